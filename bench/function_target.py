#!/usr/bin/env python3
"""The targets of bench/function.sh: a threaded HTTP server on 127.0.0.1 that answers every
request 200 after DELAY seconds (any path: the 8 monitors are /m1 .. /m8), appending
"EPOCH_SECONDS PATH" to LOG when each request arrives, so the bench can tell when a process
sent its first request.

    function_target.py PORT LOG [DELAY=0.3]
"""
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
LOG = sys.argv[2]
DELAY = float(sys.argv[3]) if len(sys.argv) > 3 else 0.3
LOCK = threading.Lock()


class Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        arrived = time.time()
        with LOCK, open(LOG, "a") as f:
            f.write(f"{arrived:.6f} {self.path}\n")
        time.sleep(DELAY)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


Server(("127.0.0.1", PORT), Slow).serve_forever()
