"""botocore's side of bench/sigv4_bench.lua: signatures per second of
SigV4Auth(creds, "rds-data", region).add_auth(AWSRequest(...)) for the request
described by the JSON document on stdin.  Run with Debian's /usr/bin/python3
(python3-botocore).  Prints one line: "<rate_fresh_auth> <rate_reused_auth> <botocore version>"."""
import json
import sys
import time

import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def rate(fn, seconds):
    for _ in range(200):  # warm-up
        fn()
    n, batch = 0, 500
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 2.0
    r = json.load(sys.stdin)
    creds = Credentials(r["access_key"], r["secret_key"], r.get("session_token"))
    body = r["body"].encode("utf-8")

    def fresh():
        req = AWSRequest(method=r["method"], url=r["url"], headers=dict(r["headers"]), data=body)
        SigV4Auth(creds, r["service"], r["region"]).add_auth(req)
        return req

    auth = SigV4Auth(creds, r["service"], r["region"])

    def reused():
        req = AWSRequest(method=r["method"], url=r["url"], headers=dict(r["headers"]), data=body)
        auth.add_auth(req)
        return req

    # sanity: the header we time is really produced
    assert fresh().headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    print("%.1f %.1f %s" % (rate(fresh, seconds), rate(reused, seconds), botocore.__version__))


if __name__ == "__main__":
    main()
