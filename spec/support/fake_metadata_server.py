#!/usr/bin/python3
"""A local stand-in for the ECS/EKS container credentials endpoint and EC2 IMDSv2,
for spec/credentials_spec.lua.  Listens on 127.0.0.1 on a free port and prints
"<port> <pid>" as its first line.  Its behaviour comes from a JSON state file,
re-read on every request, so a spec can change it between calls:

  {"delay": 0,                     seconds to wait before answering anything
   "container": {"path": "/creds", "token": "t" | null, "status": 200, "creds": {...}},
   "imds": {"token_status": 200, "require_token": true, "role": "alex-role",
            "role_status": 200, "creds_status": 200, "creds": {...}}}

Every request is appended to the log file as one JSON line:
  {"method": "PUT", "path": "/latest/api/token", "headers": {lower-case name: value},
   "status": <answer>}
IMDS rules enforced, as on EC2: PUT /latest/api/token needs
X-aws-ec2-metadata-token-ttl-seconds (1..21600) or gets 400; with require_token
the metadata GETs need a token this server issued, else 401.
"""
import argparse
import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IMDS_CREDS = "/latest/meta-data/iam/security-credentials/"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-metadata/1"

    def log_message(self, format, *args):  # noqa: A002 - keep stderr quiet
        pass

    def state(self):
        try:
            with open(self.server.state_path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def record(self, status):
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "status": status,
        }
        with self.server.lock, open(self.server.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def answer(self, status, body, content_type="text/plain"):
        data = body.encode() if isinstance(body, str) else body
        self.record(status)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def answer_json(self, status, obj):
        self.answer(status, json.dumps(obj), "application/json")

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        st = self.state()
        if st.get("delay"):
            time.sleep(float(st["delay"]))
        if self.path.startswith("/latest/"):
            return self.imds(st.get("imds", {}))
        return self.container(st.get("container", {}))

    def container(self, c):
        if self.command != "GET" or self.path != c.get("path", "/creds"):
            return self.answer(404, "not found")
        token = c.get("token")
        if token is not None and self.headers.get("Authorization") != token:
            return self.answer_json(401, {"code": "Unauthorized", "message": "bad token"})
        status = c.get("status", 200)
        if status != 200:
            return self.answer_json(status, {"code": "Error", "message": "configured failure"})
        if "raw" in c:
            return self.answer(200, c["raw"], "application/json")
        return self.answer_json(200, c.get("creds", {}))

    def imds(self, m):
        if self.path == "/latest/api/token":
            if self.command != "PUT":
                return self.answer(405, "use PUT")
            ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
            if ttl is None or not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                return self.answer(400, "missing or invalid ttl header")
            status = m.get("token_status", 200)
            if status != 200:
                return self.answer(status, "")
            token = secrets.token_hex(16)
            with self.server.lock:
                self.server.tokens.add(token)
            return self.answer(200, token)
        if self.command != "GET":
            return self.answer(405, "")
        if m.get("require_token", True):
            with self.server.lock:
                ok = self.headers.get("X-aws-ec2-metadata-token") in self.server.tokens
            if not ok:
                return self.answer(401, "")
        role = m.get("role")
        if self.path == IMDS_CREDS:
            if role is None:
                return self.answer(404, "")
            return self.answer(m.get("role_status", 200), role + "\n")
        if role is not None and self.path == IMDS_CREDS + role:
            status = m.get("creds_status", 200)
            if status != 200:
                return self.answer(status, "")
            return self.answer_json(200, m.get("creds", {}))
        return self.answer(404, "")

    do_GET = handle_any
    do_PUT = handle_any
    do_POST = handle_any


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--state", required=True)
    p.add_argument("--log", required=True)
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.state_path = args.state
    server.log_path = args.log
    server.tokens = set()
    server.lock = threading.Lock()
    sys.stdout.write("%d %d\n" % (server.server_address[1], os.getpid()))
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
