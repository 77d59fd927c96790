#!/usr/bin/python3
"""A stand-in for the RDS control-plane API (Query protocol) for spec/aurora_spec.lua.

Listens on 127.0.0.1 on a port the kernel picks and prints one line
    READY <port> <pid>
on stdout.  Every request must be a POST of a form-encoded body to "/" signed
with SigV4 for service "rds": the Authorization header must carry a
.../<region>/rds/aws4_request scope, and when --secret-key is given the
signature is recomputed here and must match (an unsigned request gets 403
MissingAuthenticationToken, a wrong scope 403 IncompleteSignature, a wrong
signature 403 SignatureDoesNotMatch -- RDS's own codes).

Answers come from the fixture folder: --script is a JSON object mapping an
Action (DescribeDBClusters, ModifyDBCluster) to a list of fixture names, used
in turn, the last one repeating; "name.xml@404" answers with that status.

Every request is appended to --record as one JSON line: action, params (the
decoded form), scope, signed_headers, signature_valid, has_session_token,
content_type, method, path.  No key, token or signature is written.
The server exits when its parent goes away, or after --lifetime seconds.
"""
import argparse
import hashlib
import hmac
import json
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request,\s*"
    r"SignedHeaders=([a-z0-9;_.-]+),\s*Signature=([0-9a-f]{64})$")
NS = "http://rds.amazonaws.com/doc/2014-10-31/"


def error_xml(code, message):
    return ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>Sender</Type>\n    <Code>%s</Code>\n'
            '    <Message>%s</Message>\n  </Error>\n  <RequestId>00000000-0000-4000-8000-000000000000'
            '</RequestId>\n</ErrorResponse>\n' % (NS, code, message)).encode()


def hmac_sha256(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def expected_signature(secret, method, path, headers, signed, body, amz_date, scope):
    """SigV4 as the AWS documentation defines it, for a POST with no query string."""
    canon_headers = "".join("%s:%s\n" % (h, " ".join((headers.get(h) or "").split())) for h in signed)
    canonical = "\n".join([method, path, "", canon_headers, ";".join(signed), hashlib.sha256(body).hexdigest()])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    date, region, service, _ = scope.split("/")
    key = hmac_sha256(("AWS4" + secret).encode(), date)
    for part in (region, service, "aws4_request"):
        key = hmac_sha256(key, part)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr, handler, args):
        super().__init__(addr, handler)
        self.args = args
        self.lock = threading.Lock()
        with open(args.script) as f:
            self.script = json.load(f)
        self.turn = {}

    def next_answer(self, action):
        with self.lock:
            answers = self.script.get(action)
            if not answers:
                return None
            i = self.turn.get(action, 0)
            self.turn[action] = i + 1
            return answers[min(i, len(answers) - 1)]

    def record(self, entry):
        if not self.args.record:
            return
        with self.lock:
            with open(self.args.record, "a") as f:
                f.write(json.dumps(entry, sort_keys=True) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rds-stand-in"
    sys_version = ""

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.answer(400, error_xml("InvalidAction", "The RDS Query API takes POST requests."))

    def do_POST(self):
        args = self.server.args
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n > 0 else b""
        params = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        action = params.get("Action", "")
        headers = {k.lower(): v for k, v in self.headers.items()}
        entry = {"method": self.command, "path": self.path, "action": action, "params": params,
                 "content_type": headers.get("content-type"),
                 "has_session_token": "x-amz-security-token" in headers}
        auth = AUTH_RE.match(headers.get("authorization", ""))
        status, out = None, None
        if not auth or "x-amz-date" not in headers:
            status, out = 403, error_xml("MissingAuthenticationToken", "Request is missing Authentication Token")
        else:
            akid, date, region, service, signed, signature = auth.groups()
            scope = "/".join([date, region, service, "aws4_request"])
            entry.update(scope=scope, signed_headers=signed, access_key_matches=(akid == args.access_key))
            signed_list = signed.split(";")
            if service != "rds" or region != args.region or not headers["x-amz-date"].startswith(date):
                status, out = 403, error_xml("IncompleteSignature",
                                             "Credential should be scoped to a valid region and service rds.")
            elif "host" not in signed_list or "x-amz-date" not in signed_list:
                status, out = 403, error_xml("IncompleteSignature", "host and x-amz-date must be signed.")
            elif args.secret_key:
                want = expected_signature(args.secret_key, self.command, self.path, headers, signed_list, body,
                                          headers["x-amz-date"], scope)
                entry["signature_valid"] = hmac.compare_digest(want, signature)
                if not entry["signature_valid"]:
                    status, out = 403, error_xml("SignatureDoesNotMatch", "The request signature we calculated "
                                                 "does not match the signature you provided.")
        if status is None:
            if self.path != "/" or params.get("Version") != "2014-10-31":
                status, out = 400, error_xml("InvalidAction", "Unknown path or API version.")
            else:
                name = self.server.next_answer(action)
                if name is None:
                    status, out = 400, error_xml("InvalidAction", "Could not find operation %s." % action)
                else:
                    fname, _, code = name.partition("@")
                    with open(os.path.join(args.fixtures, fname), "rb") as f:
                        status, out = int(code or 200), f.read()
                    entry["answered"] = name
        entry["status"] = status
        self.server.record(entry)
        self.answer(status, out)


def watchdog(parent, lifetime):
    deadline = time.monotonic() + lifetime
    while time.monotonic() < deadline:
        if os.getppid() != parent:
            break
        time.sleep(0.2)
    os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--script", required=True)
    ap.add_argument("--record")
    ap.add_argument("--region", default="us-east-1")
    ap.add_argument("--access-key")
    ap.add_argument("--secret-key")
    ap.add_argument("--lifetime", type=float, default=300)
    args = ap.parse_args()
    server = Server(("127.0.0.1", 0), Handler, args)
    threading.Thread(target=watchdog, args=(os.getppid(), args.lifetime), daemon=True).start()
    sys.stdout.write("READY %d %d\n" % (server.server_address[1], os.getpid()))
    sys.stdout.flush()
    server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
