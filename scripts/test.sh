#!/usr/bin/env bash
# The README's test command: installs what the tests need from the package
# registries (Debian's chromium for the HTML report screenshot test, xmllint
# for JUnit well-formedness, Debian's prometheus for the prometheus probe
# tests, curl for command faults in the demo suite, the junitparser Python
# package as an external JUnit consumer, Debian's nginx and haproxy and PyPI's
# pybreaker for the tests on real resilience implementations in tests/real,
# PyPI's check-jsonschema for the JSON Schema tests),
# then runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_missing=()
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
command -v xmllint >/dev/null 2>&1 || apt_missing+=(libxml2-utils)
# The tests start their own Prometheus on a free loopback port; the package's
# system service (on :9090) is neither wanted nor started, see below.
command -v prometheus >/dev/null 2>&1 || apt_missing+=(prometheus)
# The promotion experiment and its tests drive the demo's admin API with curl.
command -v curl >/dev/null 2>&1 || apt_missing+=(curl)
# tests/real starts its own nginx and HAProxy in the foreground on free
# loopback ports with configs in a temp dir; the packages' system services
# (nginx on :80, haproxy) are neither wanted nor started, see below.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_missing+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || apt_missing+=(haproxy)
if [ "${#apt_missing[@]}" -gt 0 ]; then
    echo "installing ${apt_missing[*]} (Debian packages)..."
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    # Maintainer scripts start services through invoke-rc.d (also
    # deb-systemd-invoke), which ask /usr/sbin/policy-rc.d first: exit 101
    # forbids it. Without it the prometheus, nginx and haproxy packages would
    # try to start system services, which fails in a container without systemd
    # or grabs :9090 / :80 on a host. An existing policy is left as it is.
    policy=/usr/sbin/policy-rc.d
    own_policy=""
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# temporary, from faultline scripts/test.sh\nexit 101\n' | $sudo_cmd tee "$policy" >/dev/null
        $sudo_cmd chmod 755 "$policy"
        own_policy=1
        trap '$sudo_cmd rm -f "$policy"' EXIT
    fi
    before=" $(pidof prometheus nginx haproxy || true) "
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
    if [ -n "$own_policy" ]; then
        $sudo_cmd rm -f "$policy"
        trap - EXIT
    fi
    for service in prometheus nginx haproxy; do
        [[ " ${apt_missing[*]} " == *" $service"* ]] || continue
        # Enabled services would start on the next boot: switch them off.
        if [ -d /run/systemd/system ]; then
            $sudo_cmd systemctl disable --now "$service" >/dev/null 2>&1 || true
        fi
        # Whatever the install started anyway goes (by pid, only new ones).
        for pid in $(pidof "$service" || true); do
            if [[ "$before" != *" $pid "* ]]; then
                echo "stopping the system $service the package started (pid $pid)"
                $sudo_cmd kill "$pid" || true
            fi
        done
    done
fi
if ! python3 -c "import junitparser" >/dev/null 2>&1; then
    echo "installing junitparser (PyPI)..."
    python3 -m pip install --quiet junitparser
fi
# The JSON Schema validator the schema tests run (tests/authoring/schemas.rs).
if ! command -v check-jsonschema >/dev/null 2>&1; then
    echo "installing check-jsonschema (PyPI)..."
    python3 -m pip install --quiet check-jsonschema
fi
# The in-process circuit breaker that tests/real wraps around a Python service.
if ! python3 -c "import pybreaker" >/dev/null 2>&1; then
    echo "installing pybreaker (PyPI)..."
    python3 -m pip install --quiet pybreaker
fi

cargo test "$@"
