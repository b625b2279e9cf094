"""A small canary rollback controller, as an operator would run one.

Watches HAProxy's `show stat` on the Runtime API socket every 100 ms and,
once the canary's 5xx count has grown by THRESHOLD since it started, sets
the canary's weight to 0 (`set server BACKEND/SERVER weight 0`): the canary
is rolled back and stays out even when its health check passes again.
Exits after the rollback, or after LIMIT seconds (bounded like every loop
in the test suite). Prints one line per action with the Unix time.

usage: rollback_controller.py SOCKET BACKEND SERVER THRESHOLD LIMIT_S
"""

import socket
import sys
import time


def runtime_api(path, command):
    """One Runtime API command, its whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return b"".join(chunks).decode()
            chunks.append(chunk)


def canary_5xx(path, backend, server):
    lines = runtime_api(path, "show stat").splitlines()
    header = lines[0].lstrip("# ").split(",")
    column = header.index("hrsp_5xx")
    for line in lines[1:]:
        fields = line.split(",")
        if fields[:2] == [backend, server]:
            return int(fields[column] or 0)
    raise SystemExit(f"no {backend}/{server} in show stat")


def main():
    path, backend, server = sys.argv[1], sys.argv[2], sys.argv[3]
    threshold, limit = int(sys.argv[4]), float(sys.argv[5])
    start = canary_5xx(path, backend, server)
    print(f"{time.time():.3f} watching {backend}/{server}, 5xx={start}", flush=True)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        now = canary_5xx(path, backend, server)
        if now - start >= threshold:
            answer = runtime_api(path, f"set server {backend}/{server} weight 0").strip()
            print(f"{time.time():.3f} rolled back at 5xx={now} {answer}", flush=True)
            return
        time.sleep(0.1)
    print(f"{time.time():.3f} gave up after {limit} s", flush=True)


if __name__ == "__main__":
    main()
