#!/usr/bin/env bash
# The README's test command: installs what the tests need from the package
# registries (Debian's chromium for the HTML report screenshot test, xmllint
# for JUnit well-formedness, the junitparser Python package as an external
# JUnit consumer), then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_missing=()
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
command -v xmllint >/dev/null 2>&1 || apt_missing+=(libxml2-utils)
if [ "${#apt_missing[@]}" -gt 0 ]; then
    echo "installing ${apt_missing[*]} (Debian packages)..."
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
if ! python3 -c "import junitparser" >/dev/null 2>&1; then
    echo "installing junitparser (PyPI)..."
    python3 -m pip install --quiet junitparser
fi

cargo test "$@"
