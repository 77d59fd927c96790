#!/usr/bin/python3
"""Reference for bench/reset_bench.lua: the package's approach, this schema.

A database reset done the way the Python package of the Alex project does
it (backend/database: reset_db.py, run_migrations.py, seed_data.py,
src/client.py, src/models.py), through boto3 against the same Data API
endpoint, producing the same schema and rows as
`alexlua scripts/reset.lua --with-test-data`.

It is not the package itself: to reach this schema it drops 10 tables (the 9
of schema/*.sql and alexlua's schema_migrations ledger) and 2 functions and
runs the 28 statements of schema/*.sql, 81 Data API calls with
--with-test-data.  The package, run unchanged against the local stack, drops
its 5 tables and runs its 17 statements: 64 calls.

What it imitates, call for call:
  * reset_db.py (this process, role "main") makes two boto3 clients (its
    DataAPIClient and the one inside Database), drops each table with its own
    DROP TABLE IF EXISTS ... CASCADE and then the trigger function;
  * it runs the migrations in a child Python process (role "migrate"): every
    statement of schema/*.sql, split on ';' outside $$ bodies, is one
    execute_statement, no transaction;
  * it runs the seed in a second child process (role "seed"): one INSERT ...
    ON CONFLICT DO UPDATE per instrument, then a COUNT(*) and a 5-row sample;
  * with --with-test-data, back in the main process: find the user, insert
    it, find its accounts, insert each account (RETURNING id), find the
    positions of the first account, upsert each position (RETURNING id);
  * a final COUNT(*) per table (users, instruments, accounts, positions, jobs).
The package ran its children with `uv run`, which costs more than the plain
interpreter used here, so this reference is, if anything, fast.

Settings come from the environment the bench sets (the stack's local.env):
AWS_ENDPOINT_URL_RDS_DATA, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AURORA_CLUSTER_ARN, AURORA_SECRET_ARN, AURORA_DATABASE.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parent.parent
# The tables the schema owns, children first, plus alexlua's migration ledger
# (so both resets start from and end in the same database).
TABLES = ["data_fix_changes", "data_fix_runs", "agent_logs", "price_history", "positions", "accounts", "jobs",
          "instruments", "users", "schema_migrations"]
FUNCTIONS = ["update_updated_at_column", "data_fix_capture"]


def make_client():
    return boto3.client(
        "rds-data",
        endpoint_url=os.environ["AWS_ENDPOINT_URL_RDS_DATA"],
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )


class Client:
    """The package's DataAPIClient: one execute_statement per call."""

    def __init__(self):
        self.cluster_arn = os.environ["AURORA_CLUSTER_ARN"]
        self.secret_arn = os.environ["AURORA_SECRET_ARN"]
        self.database = os.environ.get("AURORA_DATABASE", "alex")
        self.client = make_client()

    def execute(self, sql, parameters=None):
        kwargs = {"resourceArn": self.cluster_arn, "secretArn": self.secret_arn, "database": self.database,
                  "sql": sql, "includeResultMetadata": True}
        if parameters:
            kwargs["parameters"] = parameters
        return self.client.execute_statement(**kwargs)

    def query(self, sql, parameters=None):
        resp = self.execute(sql, parameters)
        cols = [c["name"] for c in resp.get("columnMetadata", [])]
        rows = []
        for rec in resp.get("records", []):
            row = {}
            for i, col in enumerate(cols):
                row[col] = value_of(rec[i])
            rows.append(row)
        return rows

    def query_one(self, sql, parameters=None):
        rows = self.query(sql, parameters)
        return rows[0] if rows else None

    def insert(self, table, data, returning=None):
        names, marks = list(data), []
        for k in names:
            v = data[k]
            if isinstance(v, (dict, list)):
                marks.append(":%s::jsonb" % k)
            elif isinstance(v, Decimal):
                marks.append(":%s::numeric" % k)
            else:
                marks.append(":%s" % k)
        sql = "INSERT INTO %s (%s) VALUES (%s)" % (table, ", ".join(names), ", ".join(marks))
        if returning:
            sql += " RETURNING " + returning
        resp = self.execute(sql, parameters(data))
        if returning and resp.get("records"):
            return value_of(resp["records"][0][0])
        return None


def parameters(data):
    out = []
    for k, v in data.items():
        if v is None:
            val = {"isNull": True}
        elif isinstance(v, bool):
            val = {"booleanValue": v}
        elif isinstance(v, int):
            val = {"longValue": v}
        elif isinstance(v, float):
            val = {"doubleValue": v}
        elif isinstance(v, (dict, list)):
            val = {"stringValue": json.dumps(v)}
        else:
            val = {"stringValue": str(v)}
        out.append({"name": k, "value": val})
    return out


def value_of(field):
    if field.get("isNull"):
        return None
    for key in ("booleanValue", "longValue", "doubleValue", "stringValue", "blobValue"):
        if key in field:
            return field[key]
    return None


def decimal(v):
    return Decimal(str(v))


# ---------------------------------------------------------------- migrate

def split_statements(text):
    """Statements of a migration file: comment lines dropped, split on ';'
    except inside $$ ... $$ bodies."""
    kept = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    statements, pending = [], []
    for piece in kept.split(";"):
        pending.append(piece)
        joined = ";".join(pending)
        if joined.count("$$") % 2:
            continue
        if joined.strip():
            statements.append(joined.strip())
        pending = []
    return statements


def run_migrations(schema_dir):
    client = Client()
    applied = 0
    for path in sorted(Path(schema_dir).glob("*.sql")):
        for stmt in split_statements(path.read_text(encoding="utf-8")):
            try:
                client.execute(stmt)
            except ClientError as e:
                if "already exists" not in e.response.get("Error", {}).get("Message", "").lower():
                    raise
            applied += 1
    print("applied %d statements" % applied)


# ---------------------------------------------------------------- seed

UPSERT_INSTRUMENT = """
    INSERT INTO instruments (symbol, name, instrument_type, current_price,
                             allocation_regions, allocation_sectors, allocation_asset_class)
    VALUES (:symbol, :name, :instrument_type, :current_price::numeric,
            :allocation_regions::jsonb, :allocation_sectors::jsonb, :allocation_asset_class::jsonb)
    ON CONFLICT (symbol) DO UPDATE SET
        name = EXCLUDED.name, instrument_type = EXCLUDED.instrument_type,
        current_price = EXCLUDED.current_price, allocation_regions = EXCLUDED.allocation_regions,
        allocation_sectors = EXCLUDED.allocation_sectors,
        allocation_asset_class = EXCLUDED.allocation_asset_class, updated_at = NOW()
"""


def seed(seed_file):
    client = Client()
    instruments = json.loads(Path(seed_file).read_text(encoding="utf-8"))
    for inst in instruments:  # the package validated each record (pydantic) first
        for key in ("allocation_regions", "allocation_sectors", "allocation_asset_class"):
            total = sum(inst.get(key, {}).values())
            if inst.get(key) and abs(total - 100) > 0.01:
                raise SystemExit("%s: %s sums to %s" % (inst["symbol"], key, total))
    loaded = 0
    for inst in instruments:
        client.execute(UPSERT_INSTRUMENT, [
            {"name": "symbol", "value": {"stringValue": inst["symbol"]}},
            {"name": "name", "value": {"stringValue": inst["name"]}},
            {"name": "instrument_type", "value": {"stringValue": inst["instrument_type"]}},
            {"name": "current_price", "value": {"stringValue": str(inst.get("current_price", 0))}},
            {"name": "allocation_regions", "value": {"stringValue": json.dumps(inst["allocation_regions"])}},
            {"name": "allocation_sectors", "value": {"stringValue": json.dumps(inst["allocation_sectors"])}},
            {"name": "allocation_asset_class",
             "value": {"stringValue": json.dumps(inst["allocation_asset_class"])}},
        ])
        loaded += 1
    count = client.query_one("SELECT COUNT(*) as count FROM instruments")["count"]
    client.query("SELECT symbol, name FROM instruments ORDER BY symbol LIMIT 5")
    print("%d/%d instruments loaded, %d in the table" % (loaded, len(instruments), count))


# ---------------------------------------------------------------- main (reset_db.py)

UPSERT_POSITION = """
    INSERT INTO positions (account_id, symbol, quantity, as_of_date)
    VALUES (:account_id::uuid, :symbol, :quantity::numeric, :as_of_date::date)
    ON CONFLICT (account_id, symbol)
    DO UPDATE SET quantity = EXCLUDED.quantity, as_of_date = EXCLUDED.as_of_date, updated_at = NOW()
    RETURNING id
"""


def create_test_data(models, test_data_file):
    data = json.loads(Path(test_data_file).read_text(encoding="utf-8"))
    user = data["user"]
    uid = user["clerk_user_id"]
    if not models.query_one("SELECT * FROM users WHERE clerk_user_id = :clerk_id",
                            [{"name": "clerk_id", "value": {"stringValue": uid}}]):
        row = {"clerk_user_id": uid, "display_name": user.get("display_name"),
               "years_until_retirement": user.get("years_until_retirement"),
               "target_retirement_income": decimal(user["target_retirement_income"])
               if user.get("target_retirement_income") is not None else None,
               "asset_class_targets": user.get("asset_class_targets"),
               "region_targets": user.get("region_targets")}
        models.insert("users", {k: v for k, v in row.items() if v is not None}, returning="clerk_user_id")
    existing = models.query("SELECT * FROM accounts WHERE clerk_user_id = :user_id ORDER BY created_at DESC",
                            [{"name": "user_id", "value": {"stringValue": uid}}])
    if existing:
        return
    ids = []
    for acc in data["accounts"]:
        ids.append(models.insert("accounts", {
            "clerk_user_id": uid, "account_name": acc["account_name"],
            "account_purpose": acc.get("account_purpose"),
            "cash_balance": decimal(acc.get("cash_balance", 0)),
            "cash_interest": decimal(acc.get("cash_interest", 0))}, returning="id"))
    today = datetime.date.today().isoformat()
    for account_id, acc in zip(ids, data["accounts"]):
        if not acc.get("positions"):
            continue
        if models.query("""SELECT p.*, i.name as instrument_name, i.instrument_type, i.current_price
                           FROM positions p JOIN instruments i ON p.symbol = i.symbol
                           WHERE p.account_id = :account_id::uuid ORDER BY p.symbol""",
                        [{"name": "account_id", "value": {"stringValue": account_id}}]):
            continue
        for pos in acc["positions"]:
            models.execute(UPSERT_POSITION, [
                {"name": "account_id", "value": {"stringValue": account_id}},
                {"name": "symbol", "value": {"stringValue": pos["symbol"]}},
                {"name": "quantity", "value": {"stringValue": str(decimal(pos["quantity"]))}},
                {"name": "as_of_date", "value": {"stringValue": today}}])


def child(role, args):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--role", role, "--schema-dir", args.schema_dir,
           "--seed-file", args.seed_file]
    res = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="ignore")
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise SystemExit("%s failed" % role)
    return res.stdout


def main_role(args):
    db = Client()
    models = Client()  # reset_db.py's Database() builds a second client
    for table in TABLES:
        db.execute("DROP TABLE IF EXISTS %s CASCADE" % table)
    for f in FUNCTIONS:
        db.execute(f"DROP FUNCTION IF EXISTS {f}() CASCADE")
    sys.stdout.write(child("migrate", args))
    sys.stdout.write(child("seed", args))
    if args.with_test_data:
        create_test_data(models, args.test_data_file)
    for table in ("users", "instruments", "accounts", "positions", "jobs"):
        row = db.query_one("SELECT COUNT(*) as count FROM %s" % table)
        print("  %-12s %s" % (table, row["count"] if row else 0))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--with-test-data", action="store_true")
    p.add_argument("--role", choices=["main", "migrate", "seed"], default="main")
    p.add_argument("--schema-dir", default=str(ROOT / "schema"))
    p.add_argument("--seed-file", default=str(ROOT / "seed" / "instruments.json"))
    p.add_argument("--test-data-file", default=str(ROOT / "seed" / "test_user.json"))
    args = p.parse_args()
    if args.role == "migrate":
        run_migrations(args.schema_dir)
    elif args.role == "seed":
        seed(args.seed_file)
    else:
        main_role(args)


if __name__ == "__main__":
    main()
