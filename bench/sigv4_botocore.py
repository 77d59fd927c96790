"""botocore's side of bench/sigv4_bench.lua: signatures per second of
SigV4Auth(creds, service, region).add_auth(AWSRequest(...)) for the request
given as a JSON document on stdin.  Run it with Debian's /usr/bin/python3
(python3-botocore).  Usage: sigv4_botocore.py SECONDS ROUNDS
Prints one line per round: "<rate with a new SigV4Auth per request> <rate with
one SigV4Auth reused>", then "version <botocore version>"."""
import json
import sys
import time

import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def rate(fn, seconds):
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
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
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

    # the header we time is really produced
    assert fresh().headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    for _ in range(2000):  # warm-up
        fresh()
        reused()
    for _ in range(rounds):
        print("%.1f %.1f" % (rate(fresh, seconds), rate(reused, seconds)), flush=True)
    print("version " + botocore.__version__)


if __name__ == "__main__":
    main()
