"""Times botocore's rest-json parser on the same ExecuteStatement response:
what boto3's client.execute_statement() does with the body before returning."""
import sys
import time

import botocore.session
from botocore.parsers import create_parser

path, rounds = sys.argv[1], int(sys.argv[2])
with open(path, "rb") as f:
    body = f.read()
model = botocore.session.get_session().get_service_model("rds-data")
shape = model.operation_model("ExecuteStatement").output_shape
parser = create_parser("rest-json")
start = time.perf_counter()
for _ in range(rounds):
    parsed = parser.parse({"status_code": 200, "headers": {}, "body": body}, shape)
per = (time.perf_counter() - start) / rounds
assert len(parsed["records"]) > 1000
print("botocore_seconds_per_decode %.6f" % per)
