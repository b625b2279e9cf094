"""A Python service guarding its dependency with pybreaker (PyPI).

GET /checkout calls DEPENDENCY_URL through `pybreaker.CircuitBreaker(
fail_max=FAIL_MAX, reset_timeout=2)`: 200 when the call succeeds, 502 when
it fails (a 5xx or a connection error), and 503 at once while the breaker is
open. GET /breaker answers {"state": "open"|"closed"|"half-open"}. Every
dependency call is appended to CALL_LOG as `<unix time> <outcome>`: the
service's own record of what reached the dependency.

A large FAIL_MAX disables the breaker (the defect). The server threads per
request with a large accept queue, so it keeps up at the test's rate.

usage: breaker_service.py PORT DEPENDENCY_URL FAIL_MAX CALL_LOG
"""

import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pybreaker

PORT, DEPENDENCY, FAIL_MAX, CALL_LOG = (
    int(sys.argv[1]),
    sys.argv[2],
    int(sys.argv[3]),
    sys.argv[4],
)
BREAKER = pybreaker.CircuitBreaker(fail_max=FAIL_MAX, reset_timeout=2)
LOG_LOCK = threading.Lock()
LOG = open(CALL_LOG, "a", buffering=1)


def record(outcome):
    with LOG_LOCK:
        LOG.write(f"{time.time():.3f} {outcome}\n")


def call_dependency():
    try:
        with urllib.request.urlopen(DEPENDENCY, timeout=1) as response:
            response.read()
        record("ok")
    except (urllib.error.URLError, OSError) as e:
        # HTTPError (a 5xx) is a URLError: a failed call for the breaker.
        record("failed")
        raise RuntimeError(f"dependency failed: {e}") from e


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/breaker":
            self.answer(200, {"state": BREAKER.current_state})
            return
        try:
            BREAKER.call(call_dependency)
            self.answer(200, {"ok": True})
        except pybreaker.CircuitBreakerError:
            self.answer(503, {"error": "breaker open"})
        except RuntimeError as e:
            self.answer(502, {"error": str(e)})

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


if __name__ == "__main__":
    Server(("127.0.0.1", PORT), Handler).serve_forever()
