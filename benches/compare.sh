#!/usr/bin/env bash
# Side-by-side benchmark of faultline's load generator and fault proxy
# against wrk, oha, nginx `stream`, HAProxy `mode tcp` and socat, on this
# machine, over 127.0.0.1 only. Rewrites docs/BENCHMARKS.md.
#
#   bash benches/compare.sh            # the full run (under 10 minutes, builds included)
#   BENCH_QUICK=1 bash benches/compare.sh   # one short run per figure, for trying the script
#
# It installs what it needs (Debian: wrk, nginx-light with the echo and stream
# modules, haproxy, socat; crates.io: oha into $CARGO_HOME/bin), builds faultline
# in release mode (CARGO_TARGET_DIR, default the project's target/) and a tiny
# stall target with rustc, starts every target and hop as the current user
# with its configuration in a temporary folder, and stops them all on exit.
# Every measurement runs RUNS times under `timeout`; the report shows medians.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
HERE="$ROOT/benches/compare"
START_S=$(date +%s)

# Run lengths. The whole script has to finish in under 10 minutes on a fresh
# machine, where building faultline and oha alone takes 6-7 minutes on 2
# cores. So the run lengths are picked once the builds are done, from the
# time left before BENCH_DEADLINE (seconds since the start): the longest of
# three tiers whose estimated duration fits. BENCH_TIER=long|normal|short
# forces one; BENCH_FULL=1 uses the issue's lengths (10 s runs, and the
# footprint over the RSS goal's 60 s, about 21 minutes); BENCH_QUICK=1 one
# short run of everything.
DEADLINE_S="${BENCH_DEADLINE:-560}"
RUNS="${BENCH_RUNS:-3}" # medians of this many runs
# set_tier NAME: MAX_SECS figure 1 at nginx; SECS figures 2 and 3 (and figure
# 1 at payments, run only if PAYMENTS=1); OHA_RATES "all" or only the top
# three rates of figure 2 for oha; CO_SECS figure 4 (at least one stall per
# run); HOP_C1_SECS and HOP_SECS figure 5 at c=1 and c=64; FOOT_SECS figure 6.
set_tier() {
    TIER="$1"
    case "$1" in
        full) MAX_SECS=10 SECS=10 PAYMENTS=1 OHA_RATES=all CO_SECS=10 HOP_C1_SECS=10 HOP_SECS=10 FOOT_SECS=60 ;;
        long) MAX_SECS=10 SECS=2 PAYMENTS=1 OHA_RATES=all CO_SECS=3 HOP_C1_SECS=1 HOP_SECS=2 FOOT_SECS=60 ;;
        normal) MAX_SECS=3 SECS=1 PAYMENTS=1 OHA_RATES=all CO_SECS=2 HOP_C1_SECS=1 HOP_SECS=2 FOOT_SECS=10 ;;
        short) MAX_SECS=2 SECS=1 PAYMENTS=0 OHA_RATES=top CO_SECS=2 HOP_C1_SECS=1 HOP_SECS=1 FOOT_SECS=5 ;;
        quick) RUNS=1 MAX_SECS=2 SECS=1 PAYMENTS=1 OHA_RATES=all CO_SECS=2 HOP_C1_SECS=1 HOP_SECS=1 FOOT_SECS=4 ;;
        *) echo "unknown BENCH_TIER $1 (long, normal, short)" >&2; exit 2 ;;
    esac
}
# tier_estimate: seconds the measurements of the current tier take (run
# lengths, plus about 0.2 s to start and stop each tool; 6 rates in figure 2).
tier_estimate() {
    local oha_rates=6
    [ "$OHA_RATES" = all ] || oha_rates=3
    local secs=$((9 * MAX_SECS + 9 * PAYMENTS * SECS + (18 + 3 * oha_rates) * SECS + 15 * SECS
        + 18 * CO_SECS + 18 * HOP_C1_SECS + 18 * HOP_SECS + 2 * FOOT_SECS + 2))
    local runs=$((9 + 9 * PAYMENTS + 18 + 3 * oha_rates + 15 + 18 + 36 + 2))
    echo $(((secs * RUNS / 3) + runs * RUNS / 3 / 5 + 5))
}
pick_tier() {
    if [ "${BENCH_QUICK:-0}" = 1 ]; then
        set_tier quick
    elif [ "${BENCH_FULL:-0}" = 1 ]; then
        set_tier full
    elif [ -n "${BENCH_TIER:-}" ]; then
        set_tier "$BENCH_TIER"
    else
        local left=$((DEADLINE_S - ($(date +%s) - START_S)))
        for t in long normal short; do
            set_tier "$t"
            [ "$(tier_estimate)" -le "$left" ] && break
        done
        log "$left s left before the ${DEADLINE_S} s deadline: $TIER runs (about $(tier_estimate) s)"
    fi
}
CONC=64              # closed-model concurrency of figure 1 and figure 5
OPEN_IN_FLIGHT=64    # open model's max_in_flight in figure 2 (oha -c 64 alike)
CO_RATE=1000         # figure 4: offered rate, and requests between two stalls
CO_STALL_MS=500
CO_CONC=8            # figure 4: connections of the closed-loop measurements
TOXIC_RATE=200       # figure 3: open-model rate through the 100 ms toxic
HOP_THREADS=$(nproc) # figure 5: nginx stream workers and HAProxy threads, as
                     # faultline's proxy runtime has one worker thread per core
FOOT_RATE=10000      # figure 6
# The project's own target folder: after the README's `cargo run --release`
# the build below has nothing left to do.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
OUT_DOC="${BENCH_OUT:-$ROOT/docs/BENCHMARKS.md}"

log() { printf '[%4ss] %s\n' "$(($(date +%s) - START_S))" "$*" >&2; }

# ------------------------------------------------------------------ install
install_tools() {
    local missing=()
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)
    command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
    command -v socat >/dev/null 2>&1 || missing+=(socat)
    command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
    [ -e /usr/lib/nginx/modules/ngx_http_echo_module.so ] || missing+=(libnginx-mod-http-echo)
    [ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
    command -v /usr/bin/time >/dev/null 2>&1 || missing+=(time)
    if ! command -v oha >/dev/null 2>&1; then
        # To build oha with native-tls.
        dpkg -s libssl-dev >/dev/null 2>&1 || missing+=(libssl-dev)
        command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    fi
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]} (Debian packages)"
        local sudo_cmd=""
        [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
        $sudo_cmd apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
}

# oha builds from source (a few minutes on 2 cores): it runs in the background
# while faultline builds, so the slow serial ends of both builds overlap.
# Built with native-tls (Debian's OpenSSL) instead of its default rustls,
# which compiles aws-lc from C; the benchmark only speaks plain http://, so
# the TLS backend does not change what is measured.
OHA_PID=""
OHA_WAS_MISSING=""
start_oha_install() {
    command -v oha >/dev/null 2>&1 && return 0
    OHA_WAS_MISSING=1
    log "installing oha from crates.io in the background (cargo install --locked)"
    cargo install oha --locked --quiet --no-default-features --features native-tls \
        >"/tmp/faultline-bench-oha-install.log" 2>&1 &
    OHA_PID=$!
}
wait_oha_install() {
    [ -n "$OHA_PID" ] || return 0
    if ! wait "$OHA_PID"; then
        echo "cargo install oha failed:" >&2
        tail -20 /tmp/faultline-bench-oha-install.log >&2
        exit 1
    fi
    OHA_PID=""
}

# -------------------------------------------------------------- processes
WORK=""
PIDS=()
cleanup() {
    local pid
    # Builds still running (the script failed or was interrupted); apt is
    # left to finish, as killing it could leave dpkg half-configured.
    for pid in "${OHA_PID:-}" "${FL_BUILD_PID:-}"; do
        [ -z "$pid" ] && continue
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # socat forks a child per connection: stop those too (by parent id).
        pkill -TERM -P "$pid" 2>/dev/null || true
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [ -n "$WORK" ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Starts a long-running process in the background, logging to $WORK/NAME.log.
spawn() {
    local name="$1"
    shift
    "$@" >"$WORK/$name.log" 2>&1 &
    PIDS+=("$!")
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() {
    local port="$1"
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$port; logs in $WORK" >&2
    exit 1
}

# ---------------------------------------------------------------- records
# record FIG CASE TOOL RUN KIND FILE [key=value...]: one JSON line per run.
record() {
    local fig="$1" case="$2" tool="$3" run="$4" kind="$5" file="$6"
    shift 6
    python3 "$HERE/results.py" parse "$kind" "$file" "fig=\"$fig\"" "case=\"$case\"" \
        "tool=\"$tool\"" "run=$run" "$@" >>"$RESULTS"
}

# measure FIG CASE TOOL RUN NAME KIND ARGS...: runs `run_KIND` with its raw
# output in $WORK/raw/NAME and ARGS after it, then records that run.
measure() {
    local fig="$1" case="$2" tool="$3" run="$4" file="$WORK/raw/$5" kind="$6"
    shift 6
    "run_$kind" "$file" "$@"
    record "$fig" "$case" "$tool" "$run" "$kind" "$file"
}

# ------------------------------------------------------------ load tools
# Each writes its raw output to the file given and never runs unbounded.
run_wrk() { # FILE THREADS CONNS SECS URL
    timeout -k 5 $(($4 + 30)) wrk -t"$2" -c"$3" -d"$4s" --latency "$5" >"$1" 2>&1 || true
}
run_oha() { # FILE SECS URL [oha args...]
    local file="$1" secs="$2" url="$3"
    shift 3
    timeout -k 5 $((secs + 30)) oha --no-tui --output-format json -z "${secs}s" "$@" "$url" \
        >"$file" 2>"$file.err" || true
}
# faultline_yaml NAME URL SECS LOAD-YAML-LINES: an experiment of one phase.
faultline_yaml() {
    local file="$WORK/exp/$1.yaml"
    cat >"$file" <<EOF
name: $1
target:
  url: $2
load:
$4
  timeout: 5s
  requests:
    - { path: / }
phases:
  - name: run
    duration: ${3}s
EOF
    echo "$file"
}
run_faultline() { # FILE EXPERIMENT SECS
    local out="${1%.json}"
    timeout -k 5 $(($3 + 60)) "$FAULTLINE" run "$2" --quiet --out "$out.d" --json "$1" \
        >"$out.log" 2>&1 || true
}

closed() { printf '  concurrency: %s' "$1"; }
open_model() { printf '  rate: %s\n  max_in_flight: %s' "$1" "$2"; }

# ================================================================= main
# Debian packages install while faultline builds (the build needs none of
# them); oha's build starts once they are there (it links Debian's OpenSSL).
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
install_tools &
APT_PID=$!
FL_BUILD_PID=""
if [ -n "${BENCH_FAULTLINE:-}" ]; then
    FAULTLINE="$BENCH_FAULTLINE" # an already built binary (e.g. to compare two builds)
else
    log "building faultline (release) into $CARGO_TARGET_DIR"
    (cd "$ROOT" && cargo build --release --quiet --bin faultline) &
    FL_BUILD_PID=$!
    FAULTLINE="$CARGO_TARGET_DIR/release/faultline"
fi
if ! wait "$APT_PID"; then
    echo "installing the Debian packages failed" >&2
    exit 1
fi
INSTALL_S=$(($(date +%s) - START_S))
start_oha_install
if [ -n "$FL_BUILD_PID" ] && ! wait "$FL_BUILD_PID"; then
    echo "building faultline failed" >&2
    exit 1
fi
wait_oha_install
BUILD_S=$(($(date +%s) - START_S))
OHA_BUILT=$([ -n "$OHA_WAS_MISSING" ] && echo True || echo False)
pick_tier
MEASURE_START_S=$(date +%s)
WORK="$(mktemp -d /tmp/faultline-bench.XXXXXX)"
mkdir -p "$WORK/exp" "$WORK/raw" "$WORK/nginx" "$WORK/stream"
RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
rustc -O --edition 2021 -o "$WORK/stall_target" "$HERE/stall_target.rs"

# ---------------------------------------------------------------- targets
P_STATIC=$(free_port) P_DELAY=$(free_port) P_STREAM=$(free_port) P_HAPROXY=$(free_port)
P_SOCAT=$(free_port) P_ADMIN=$(free_port) P_FL=$(free_port) P_FL0=$(free_port)
P_FL100=$(free_port) P_STALL=$(free_port) P_ADMIN2=$(free_port) P_FLFOOT=$(free_port)
nginx_user=""
[ "$(id -u)" -eq 0 ] && nginx_user="user root;"
nginx_common() { # PREFIX WORKERS
    cat <<EOF
$nginx_user
worker_processes $2;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 8192; }
EOF
}
{
    echo "load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;"
    nginx_common "$WORK/nginx" 1
    cat <<EOF
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  server { listen 127.0.0.1:$P_STATIC; location / { return 200 "hello\n"; } }
  server { listen 127.0.0.1:$P_DELAY; location / { echo_sleep 0.02; echo "slow"; } }
}
EOF
} >"$WORK/nginx/nginx.conf"
{
    echo "load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
    nginx_common "$WORK/stream" "$HOP_THREADS"
    echo "stream { server { listen 127.0.0.1:$P_STREAM; proxy_pass 127.0.0.1:$P_STATIC; } }"
} >"$WORK/stream/nginx.conf"
cat >"$WORK/haproxy.cfg" <<EOF
global
  maxconn 8192
  nbthread $HOP_THREADS
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
listen bench
  bind 127.0.0.1:$P_HAPROXY
  server nginx 127.0.0.1:$P_STATIC
EOF
cat >"$WORK/proxies.json" <<EOF
[
  {"name": "plain", "listen": "127.0.0.1:$P_FL", "upstream": "127.0.0.1:$P_STATIC", "enabled": true},
  {"name": "toxic0", "listen": "127.0.0.1:$P_FL0", "upstream": "127.0.0.1:$P_STATIC", "enabled": true},
  {"name": "toxic100", "listen": "127.0.0.1:$P_FL100", "upstream": "127.0.0.1:$P_STATIC", "enabled": true}
]
EOF
log "starting nginx, nginx stream, haproxy, socat, faultline proxy, the stall target and the demo"
spawn nginx nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"
spawn stream nginx -p "$WORK/stream" -c "$WORK/stream/nginx.conf"
spawn haproxy haproxy -db -f "$WORK/haproxy.cfg"
spawn socat socat "TCP-LISTEN:$P_SOCAT,bind=127.0.0.1,reuseaddr,fork,backlog=1024" "TCP:127.0.0.1:$P_STATIC,nodelay"
spawn flproxy "$FAULTLINE" proxy --admin "127.0.0.1:$P_ADMIN" --config "$WORK/proxies.json"
spawn stall "$WORK/stall_target" "127.0.0.1:$P_STALL" "$CO_RATE" "$CO_STALL_MS"
spawn demo "$FAULTLINE" demo --payments-latency 0ms
for p in $P_STATIC $P_DELAY $P_STREAM $P_HAPROXY $P_SOCAT $P_ADMIN $P_FL $P_FL0 $P_FL100 $P_STALL; do
    wait_port "$p"
done
for _ in $(seq 100); do grep -q '^  payments  ' "$WORK/demo.log" && break; sleep 0.1; done
PAYMENTS_URL="$(awk '$1 == "payments" && $2 ~ /^http/ {print $2}' "$WORK/demo.log")"
[ -n "$PAYMENTS_URL" ] || { echo "the demo did not start: $(cat "$WORK/demo.log")" >&2; exit 1; }
toxic() { # PROXY LATENCY_MS
    curl -fsS -X POST "http://127.0.0.1:$P_ADMIN/proxies/$1/toxics" -H 'Content-Type: application/json' \
        -d "{\"name\": \"lat\", \"type\": \"latency\", \"stream\": \"downstream\", \"attributes\": {\"latency\": $2}}" >/dev/null
}
toxic toxic0 0
toxic toxic100 100
STATIC="http://127.0.0.1:$P_STATIC/"

# ------------------------------------------------- 1. closed-model max rate
log "figure 1: closed-model max throughput (${MAX_SECS}s x $RUNS per tool)"
F1_TARGETS="nginx"
[ "$PAYMENTS" = 1 ] && F1_TARGETS="nginx payments"
for target in $F1_TARGETS; do
    if [ "$target" = nginx ]; then url="$STATIC" secs="$MAX_SECS"; else url="$PAYMENTS_URL/pay" secs="$SECS"; fi
    exp=$(faultline_yaml "f1-$target" "$url" "$secs" "$(closed $CONC)")
    for run in $(seq "$RUNS"); do
        measure f1 "$target" faultline "$run" "f1-$target-fl-$run.json" faultline "$exp" "$secs"
        measure f1 "$target" wrk "$run" "f1-$target-wrk-$run.txt" wrk 2 "$CONC" "$secs" "$url"
        measure f1 "$target" oha "$run" "f1-$target-oha-$run.json" oha "$secs" "$url" -c "$CONC"
    done
done
FL_MAX=$(python3 - "$RESULTS" <<'EOF'
import json, statistics, sys
xs = [r["rps"] for r in map(json.loads, open(sys.argv[1])) if r["fig"] == "f1" and r["case"] == "nginx" and r["tool"] == "faultline"]
print(int(statistics.median(xs)) if xs else 0)
EOF
)

# --------------------------------------------------- 2. open-model accuracy
RATES="1000 5000 10000 20000"
if [ "$FL_MAX" -gt 0 ]; then RATES="$RATES $((FL_MAX * 8 / 10 / 100 * 100)) $((FL_MAX / 100 * 100))"; fi
OHA_RATE_LIST="$RATES"
[ "$OHA_RATES" = all ] || OHA_RATE_LIST=$(echo "$RATES" | tr ' ' '\n' | tail -3 | tr '\n' ' ')
log "figure 2: open-model rate accuracy at $RATES (${SECS}s x $RUNS, faultline and oha -q)"
for rate in $RATES; do
    exp=$(faultline_yaml "f2-$rate" "$STATIC" "$SECS" "$(open_model "$rate" $OPEN_IN_FLIGHT)")
    for run in $(seq "$RUNS"); do
        measure f2 "$rate" faultline "$run" "f2-$rate-fl-$run.json" faultline "$exp" "$SECS"
        case " $OHA_RATE_LIST " in *" $rate "*) ;; *) continue ;; esac
        measure f2 "$rate" oha "$run" "f2-$rate-oha-$run.json" oha "$SECS" "$STATIC" -c "$CONC" -q "$rate"
    done
done

# ----------------------------------------------------- 3. latency accuracy
log "figure 3: latency accuracy (20 ms target; 100 ms toxic)"
DELAY="http://127.0.0.1:$P_DELAY/"
exp=$(faultline_yaml f3-delay "$DELAY" "$SECS" "$(closed $CONC)")
exp_direct=$(faultline_yaml f3-direct "$STATIC" "$SECS" "$(open_model $TOXIC_RATE 1024)")
exp_toxic=$(faultline_yaml f3-toxic "http://127.0.0.1:$P_FL100/" "$SECS" "$(open_model $TOXIC_RATE 1024)")
for run in $(seq "$RUNS"); do
    measure f3 delay20 faultline "$run" "f3-delay-fl-$run.json" faultline "$exp" "$SECS"
    measure f3 delay20 wrk "$run" "f3-delay-wrk-$run.txt" wrk 2 "$CONC" "$SECS" "$DELAY"
    measure f3 delay20 oha "$run" "f3-delay-oha-$run.json" oha "$SECS" "$DELAY" -c "$CONC"
    measure f3 toxic100 direct "$run" "f3-direct-$run.json" faultline "$exp_direct" "$SECS"
    measure f3 toxic100 proxied "$run" "f3-toxic-$run.json" faultline "$exp_toxic" "$SECS"
done

# ------------------------------------------------ 4. coordinated omission
log "figure 4: coordinated omission (stall ${CO_STALL_MS} ms every $CO_RATE requests)"
STALL="http://127.0.0.1:$P_STALL/"
exp_open=$(faultline_yaml f4-open "$STALL" "$CO_SECS" "$(open_model $CO_RATE 1024)")
exp_closed=$(faultline_yaml f4-closed "$STALL" "$CO_SECS" "$(closed $CO_CONC)")
CO_OPEN="faultline, open model $CO_RATE/s"
CO_CLOSED="faultline, closed model c=$CO_CONC"
CO_WRK="wrk -c$CO_CONC (closed loop)"
CO_OHA="oha -c$CO_CONC (closed loop)"
CO_OHAQ="oha -q $CO_RATE -c$CO_CONC"
CO_OHAQC="oha -q $CO_RATE -c$CO_CONC --latency-correction"
for run in $(seq "$RUNS"); do
    measure f4 "$CO_OPEN" any "$run" "f4-open-$run.json" faultline "$exp_open" "$CO_SECS"
    measure f4 "$CO_CLOSED" any "$run" "f4-closed-$run.json" faultline "$exp_closed" "$CO_SECS"
    measure f4 "$CO_WRK" any "$run" "f4-wrk-$run.txt" wrk 1 "$CO_CONC" "$CO_SECS" "$STALL"
    measure f4 "$CO_OHA" any "$run" "f4-oha-$run.json" oha "$CO_SECS" "$STALL" -c "$CO_CONC"
    measure f4 "$CO_OHAQ" any "$run" "f4-ohaq-$run.json" oha "$CO_SECS" "$STALL" -c "$CO_CONC" -q "$CO_RATE"
    measure f4 "$CO_OHAQC" any "$run" "f4-ohaqc-$run.json" oha "$CO_SECS" "$STALL" -c "$CO_CONC" -q "$CO_RATE" --latency-correction
done

# ------------------------------------------------------- 5. proxy overhead
log "figure 5: proxy overhead (${HOP_C1_SECS}s at c=1 and ${HOP_SECS}s at c=$CONC per hop, x $RUNS)"
HOPS="direct:$P_STATIC faultline:$P_FL faultline-toxic0:$P_FL0 nginx-stream:$P_STREAM haproxy:$P_HAPROXY socat:$P_SOCAT"
for run in $(seq "$RUNS"); do
    for hop in $HOPS; do
        name="${hop%%:*}" port="${hop##*:}"
        measure f5 "$name" c1 "$run" "f5-$name-c1-$run.txt" wrk 1 1 "$HOP_C1_SECS" "http://127.0.0.1:$port/"
        measure f5 "$name" c64 "$run" "f5-$name-c64-$run.txt" wrk 2 "$CONC" "$HOP_SECS" "http://127.0.0.1:$port/"
    done
done

# ------------------------------------------------------------ 6. footprint
# footprint CASE URL: one `faultline run` at FOOT_RATE under /usr/bin/time,
# RSS sampled every second; with a proxy pid, that process is measured too.
footprint() {
    local case="$1" url="$2" proxy_pid="${3:-}"
    local exp f tpid fpid samples="" t0 ticks0=0 ticks1 hz
    exp=$(faultline_yaml "f6-$case" "$url" "$FOOT_SECS" "$(open_model $FOOT_RATE 1024)")
    f="$WORK/raw/f6-$case.json"
    hz=$(getconf CLK_TCK)
    [ -n "$proxy_pid" ] && ticks0=$(awk '{print $14 + $15}' "/proc/$proxy_pid/stat")
    t0=$(date +%s.%N)
    timeout -k 5 $((FOOT_SECS + 60)) /usr/bin/time -v -o "$f.time" \
        "$FAULTLINE" run "$exp" --quiet --out "$f.d" --json "$f" >"$f.log" 2>&1 &
    tpid=$!
    fpid=""
    for _ in $(seq 50); do
        fpid=$(pgrep -P "$(pgrep -P "$tpid" | head -1)" 2>/dev/null | head -1 || true)
        [ -n "$fpid" ] && break
        sleep 0.1
    done
    local elapsed=0
    while kill -0 "$tpid" 2>/dev/null && [ "$elapsed" -lt $((FOOT_SECS + 60)) ]; do
        sleep 1
        elapsed=$((elapsed + 1))
        if [ -n "$fpid" ] && [ -r "/proc/$fpid/status" ]; then
            samples="$samples $(awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$fpid/status")"
        fi
    done
    wait "$tpid" || true
    local wall
    wall=$(python3 -c "import time; print(time.time() - $t0)")
    python3 - "$f" "$f.time" "$samples" "$case" >"$f.fp" <<'EOF'
import json, re, sys
report, timefile, samples, case = sys.argv[1:5]
t = open(timefile).read()
def num(pat):
    m = re.search(pat, t)
    return float(m.group(1)) if m else None
rss = num(r"Maximum resident set size \(kbytes\): (\d+)")
cpu = num(r"Percent of CPU this job got: (\d+)%")
rate = 0.0
try:
    rate = json.load(open(report))["experiments"][0]["phases"][0]["rate"]
except Exception:
    pass
print(json.dumps({"process": "faultline run", "rps": rate, "rss_peak_mib": rss / 1024 if rss else None,
                  "cpu_pct": cpu, "rss_samples_mib": [float(x) for x in samples.split()]}))
EOF
    record f6 "$case" any 1 footprint "$f.fp"
    if [ -n "$proxy_pid" ]; then
        ticks1=$(awk '{print $14 + $15}' "/proc/$proxy_pid/stat")
        python3 - "$proxy_pid" "$ticks0" "$ticks1" "$hz" "$wall" >"$f.proxy.fp" <<'EOF'
import json, sys
pid, t0, t1, hz, wall = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
hwm = None
for line in open("/proc/%s/status" % pid):
    if line.startswith("VmHWM"):
        hwm = int(line.split()[1]) / 1024
print(json.dumps({"process": "faultline proxy", "rss_peak_mib": hwm, "cpu_pct": 100.0 * (t1 - t0) / hz / wall}))
EOF
        record f6 "$case" any 1 footprint "$f.proxy.fp"
    fi
}
log "figure 6: footprint at $FOOT_RATE req/s for ${FOOT_SECS}s, direct and through a fresh faultline proxy"
footprint direct "$STATIC"
cat >"$WORK/proxy-foot.json" <<EOF
[{"name": "foot", "listen": "127.0.0.1:$P_FLFOOT", "upstream": "127.0.0.1:$P_STATIC", "enabled": true}]
EOF
spawn flproxy-foot "$FAULTLINE" proxy --admin "127.0.0.1:$P_ADMIN2" --config "$WORK/proxy-foot.json"
FOOT_PROXY_PID="${PIDS[-1]}"
wait_port "$P_FLFOOT"
footprint "through faultline proxy" "http://127.0.0.1:$P_FLFOOT/" "$FOOT_PROXY_PID"

# ----------------------------------------------------------------- report
END_S=$(date +%s)
RUNTIME_S=$((END_S - START_S))
MEASURE_S=$((END_S - MEASURE_START_S))
# How much longer BENCH_FULL=1 takes than this run's measurements did.
FULL_EXTRA_S=$(( $(set_tier full; tier_estimate) - MEASURE_S ))
log "rendering $OUT_DOC"
python3 - "$WORK/meta.json" <<EOF
import json, subprocess, sys
def sh(cmd):
    try:
        out = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0].strip()
    except Exception:
        return "unknown"
lscpu = sh("lscpu | grep 'Model name' | sed 's/Model name: *//'")
meta = {
  "date": sh("date -u +%Y-%m-%dT%H:%MZ"),
  "runs": $RUNS, "max_secs": $MAX_SECS, "secs": $SECS, "hop_secs": $HOP_SECS, "hop_c1_secs": $HOP_C1_SECS, "co_secs": $CO_SECS,
  "concurrency": $CONC, "open_in_flight": $OPEN_IN_FLIGHT, "toxic_rate": $TOXIC_RATE,
  "footprint_rate": $FOOT_RATE, "hop_threads": $HOP_THREADS, "footprint_secs": $FOOT_SECS,
  "co_rate": $CO_RATE, "co_stall_ms": $CO_STALL_MS, "co_conc": $CO_CONC,
  "runtime": "%d min %02d s" % divmod($RUNTIME_S, 60),
  "build": "%d min %02d s" % divmod($BUILD_S, 60), "install": "%d min %02d s" % divmod($INSTALL_S, 60),
  "measure": "%d min %02d s" % divmod($MEASURE_S, 60), "full_extra": "%d min" % round($FULL_EXTRA_S / 60),
  "oha_built": $OHA_BUILT, "tier": "$TIER", "deadline": $DEADLINE_S, "oha_rates": "$OHA_RATES",
  "machine": [
    ["cores", sh("nproc")], ["cpu", lscpu], ["kernel", sh("uname -sr")],
    ["memory", sh("free -h | awk '/Mem:/ {print \$2}'")], ["shared", "yes: a 2-core VM other jobs also use"],
  ],
  "versions": [
    ["faultline", sh("'$FAULTLINE' --version") + " (release: lto=thin, codegen-units=1)"],
    ["wrk", sh("wrk -v 2>&1 | head -1")], ["oha", sh("oha --version")],
    ["nginx", sh("nginx -v 2>&1")], ["haproxy", sh("haproxy -v | head -1")],
    ["socat", sh("socat -V | grep 'socat version'")], ["rustc", sh("rustc --version")],
  ],
  "targets": [
    "nginx, one worker process: \`return 200 \"hello\\\\n\"\` (the static target) and \`echo_sleep 0.02\` (the fixed 20 ms target, echo module)",
    "faultline's demo \`payments\` server (\`faultline demo --payments-latency 0ms\`, \`GET /pay\`, a JSON body): a hyper server, in figure 1",
    "\`benches/compare/stall_target.rs\` (std only, built with rustc): answers at once, but every $CO_RATE-th request freezes it for $CO_STALL_MS ms (figure 4)",
  ],
  "hop_names": {"direct": "direct (no hop)", "faultline": "faultline proxy, no toxic",
                "faultline-toxic0": "faultline proxy, 0 ms latency toxic", "nginx-stream": "nginx stream",
                "haproxy": "HAProxy mode tcp", "socat": "socat (fork)"},
  "commands": {
    "f1": ["faultline run (closed model, concurrency: $CONC, ${MAX_SECS}s)", "wrk -t2 -c$CONC -d${MAX_SECS}s --latency URL",
           "oha --no-tui --output-format json -z ${MAX_SECS}s -c $CONC URL"],
    "f2": ["faultline run (open model, rate: RATE, max_in_flight: $OPEN_IN_FLIGHT, ${SECS}s)",
           "oha --no-tui --output-format json -z ${SECS}s -c $CONC -q RATE URL"],
    "f3": ["faultline run (closed, concurrency: $CONC)", "wrk -t2 -c$CONC -d${SECS}s --latency URL",
           "oha -z ${SECS}s -c $CONC URL", "POST /proxies/toxic100/toxics {type: latency, stream: downstream, latency: 100}",
           "faultline run (open, rate: $TOXIC_RATE) direct and through the hop"],
    "f4": ["faultline run (open, rate: $CO_RATE, max_in_flight: 1024 / closed, concurrency: $CO_CONC)",
           "wrk -t1 -c$CO_CONC -d${CO_SECS}s --latency URL", "oha -z ${CO_SECS}s -c $CO_CONC [-q $CO_RATE [--latency-correction]] URL"],
    "f5": ["wrk -t1 -c1 -d${HOP_C1_SECS}s --latency URL", "wrk -t2 -c$CONC -d${HOP_SECS}s --latency URL"],
    "f6": ["/usr/bin/time -v faultline run (open, rate: $FOOT_RATE, max_in_flight: 1024, ${FOOT_SECS}s)"],
  },
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
mkdir -p "$(dirname "$OUT_DOC")"
python3 "$HERE/results.py" render "$RESULTS" "$WORK/meta.json" >"$OUT_DOC.tmp"
mv "$OUT_DOC.tmp" "$OUT_DOC"
if [ -n "${BENCH_RESULTS_COPY:-}" ]; then
    cp "$RESULTS" "$BENCH_RESULTS_COPY"
    cp "$WORK/meta.json" "${BENCH_RESULTS_COPY%.jsonl}.meta.json"
fi
log "wrote $OUT_DOC in ${RUNTIME_S}s"
