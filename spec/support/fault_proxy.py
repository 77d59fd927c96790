#!/usr/bin/python3
"""A forwarding proxy on 127.0.0.1 that fails chosen Data API operations.

Sits between alexlua and a real alex-dataapi, so the client's handling of a
failure can be checked against real transactions:

    fault_proxy.py --upstream 127.0.0.1:PORT --op RollbackTransaction \
        --times 1 --status 500 --when before|after

--when before: answer the status without forwarding (the call never ran);
--when after: forward, let it run, then answer the status instead of the
real answer (the call ran, its answer was lost); --status 0 with --delay S:
forward, then hold the real answer S seconds (a call in flight for a
while, to be interrupted).  Only the first --times
calls of --op fail; everything else is forwarded unchanged, headers and
body verbatim, so SigV4 signatures still verify upstream.

Prints "READY <port> <pid>" when listening; a line per request (the
operation and what was done) goes to the --log file.  Exits when its
parent goes away.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPS = {
    "/Execute": "ExecuteStatement", "/BatchExecute": "BatchExecuteStatement",
    "/BeginTransaction": "BeginTransaction", "/CommitTransaction": "CommitTransaction",
    "/RollbackTransaction": "RollbackTransaction",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--op", required=True)
    ap.add_argument("--times", type=int, default=1)
    ap.add_argument("--status", type=int, default=500)
    ap.add_argument("--when", choices=["before", "after"], default="before")
    ap.add_argument("--delay", type=float, default=0)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    host, port = a.upstream.split(":")
    lock = threading.Lock()
    state = {"left": a.times}

    def log(line):
        # the spec may have finished and removed its folder while an answer
        # was still held back: a line nobody will read is not an error
        try:
            with lock, open(a.log, "a") as f:
                f.write(line + "\n")
        except FileNotFoundError:
            pass

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, body, headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def fail(self):
            body = json.dumps({"message": "injected by fault_proxy"}).encode()
            self.answer(a.status, body, [("Content-Type", "application/json"),
                                         ("x-amzn-ErrorType", "InternalFailure")])

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            op = OPS.get(self.path, self.path)
            with lock:
                hit = op == a.op and state["left"] > 0
                if hit:
                    state["left"] -= 1
            if hit and a.when == "before":
                log(f"{op} failed-before")
                return self.fail()
            conn = http.client.HTTPConnection(host, int(port), timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            conn.request("POST", self.path, body=body, headers=headers)
            res = conn.getresponse()
            data = res.read()
            conn.close()
            if hit and a.delay:
                log(f"{op} holding")
                time.sleep(a.delay)
            if hit and a.status:
                log(f"{op} failed-after upstream={res.status}")
                return self.fail()
            if hit:
                log(f"{op} held {a.delay}s upstream={res.status}")
            log(f"{op} forwarded {res.status}")
            self.answer(res.status, data, [(k, v) for k, v in res.getheaders()
                                           if k.lower() not in ("content-length", "connection",
                                                                "transfer-encoding")])

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    print(f"READY {srv.server_address[1]} {os.getpid()}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
