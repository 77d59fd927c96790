#!/usr/bin/python3
"""HTTP/1.1 (optionally TLS) test server for the alexlua specs.

Listens on 127.0.0.1 on a port the kernel picks, then prints one line
    READY <port> <refused_port> <silent_port> <pid>
on stdout and nothing more there.  <refused_port> is a port held bound but
not listening, so connecting to it is refused for as long as the server runs;
<silent_port> listens but never accepts: connections complete (the kernel's
backlog) and then nothing is ever said on them.

Counters (accepted connections, requests, slow requests in flight) are kept in
the file given by --stats as "name=value" lines, rewritten atomically.

Endpoints (any method):
  /echo            JSON: method, path, headers [[name, value]...], body, body_length
  /raw             the request body, verbatim
  /bytes?n=N       N bytes, byte i = (i + i // 256) % 256
  /status?code=C   status C
  /headers         repeated and mixed-case response headers
  /slow?delay=S    answers after S seconds
  /partial         announces 100000 bytes, sends 10, closes (FIN)
  /rst             announces 100000 bytes, sends 10, resets the connection (RST)
  /nothing         closes without answering
  /garbage         answers something that is not HTTP
The server exits when its parent process goes away, or after --lifetime seconds.
"""
import argparse
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ROTATIONS = [bytes((j + k) & 0xFF for j in range(256)) for k in range(256)]


def pattern(n):
    blocks = (n + 255) // 256
    return b"".join(ROTATIONS[k & 0xFF] for k in range(blocks))[:n]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, addr, handler, tls_context, stats_path):
        super().__init__(addr, handler)
        self.tls_context = tls_context
        self.stats_path = stats_path
        self.lock = threading.Lock()
        self.to_reset = set()
        self.counters = {"connections": 0, "requests": 0, "slow_inflight": 0, "slow_started": 0}
        self.write_stats()

    def bump(self, name, delta=1):
        with self.lock:
            self.counters[name] += delta
            self.write_stats()

    def write_stats(self):
        if not self.stats_path:
            return
        tmp = self.stats_path + ".tmp"
        with open(tmp, "w") as f:
            for k, v in sorted(self.counters.items()):
                f.write("%s=%d\n" % (k, v))
        os.replace(tmp, self.stats_path)

    def get_request(self):
        sock, addr = self.socket.accept()
        # headers and body go out in separate writes: without this, Nagle and
        # the client's delayed ACK add 40 ms to every request on a kept connection
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.bump("connections")
        if self.tls_context:
            sock = self.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request, client_address):
        if self.tls_context:
            try:
                request.settimeout(10)
                request.do_handshake()
                request.settimeout(None)
            except (OSError, ssl.SSLError):
                return  # e.g. the client rejected our certificate
        super().finish_request(request, client_address)

    def shutdown_request(self, request):
        with self.lock:
            reset = request in self.to_reset
            self.to_reset.discard(request)
        if reset:
            request.close()  # SO_LINGER 0 and no shutdown(): the kernel sends RST
            return
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        pass  # clients that go away are part of the tests


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "alex-test"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def cut(self, reset):
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"0123456789")
        self.wfile.flush()
        self.close_connection = True
        if reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with self.server.lock:
                self.server.to_reset.add(self.connection)

    def dispatch(self):
        self.server.bump("requests")
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        body = self.read_body()
        path = url.path
        if path == "/echo":
            out = {
                "method": self.command,
                "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body": body.decode("latin-1"),
                "body_length": len(body),
            }
            self.send(200, json.dumps(out).encode(), [("Content-Type", "application/json")])
        elif path == "/raw":
            self.send(200, body, [("Content-Type", "application/octet-stream")])
        elif path == "/bytes":
            self.send(200, pattern(int(q["n"][0])), [("Content-Type", "application/octet-stream")])
        elif path == "/status":
            code = int(q["code"][0])
            self.send(code, b"" if code in (204, 304) else ("status %d" % code).encode())
        elif path == "/headers":
            self.send(200, b"ok", [("X-Multi", "a"), ("X-Multi", "b"), ("X-Multi", "c"),
                                   ("Mixed-CASE-Name", "  padded value  "), ("X-Empty", "")])
        elif path == "/slow":
            delay = float(q.get("delay", ["5"])[0])
            self.server.bump("slow_inflight")
            self.server.bump("slow_started")
            try:
                time.sleep(delay)
                self.send(200, b"slow done")
            finally:
                self.server.bump("slow_inflight", -1)
        elif path == "/partial":
            self.cut(reset=False)
        elif path == "/rst":
            self.cut(reset=True)
        elif path == "/nothing":
            self.close_connection = True
        elif path == "/garbage":
            self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
            self.close_connection = True
        else:
            self.send(404, b"not found")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = dispatch


def watchdog(parent, lifetime):
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline and os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--stats")
    ap.add_argument("--lifetime", type=float, default=900)
    args = ap.parse_args()
    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))  # bound, never listening
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)  # never accepted
    server = Server(("127.0.0.1", 0), Handler, ctx, args.stats)
    threading.Thread(target=watchdog, args=(os.getppid(), args.lifetime), daemon=True).start()
    sys.stdout.write("READY %d %d %d %d\n" % (server.server_address[1], refused.getsockname()[1],
                                              silent.getsockname()[1], os.getpid()))
    sys.stdout.flush()
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
