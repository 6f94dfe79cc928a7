"""A short asyncpg workload through pgward.

Connection parameters come from the environment (PGHOST, PGPORT, PGDATABASE,
PGUSER, PGPASSWORD). Prints one JSON object with what each step saw; the Rust
test (tests/integration/clients_python.rs) judges it. Exit status 0 when every
step ran, 1 when one raised unexpectedly (the JSON then says where: "failed").

asyncpg sends client_encoding='utf-8' in its startup packet, and introspects
types it does not know (here an enum) with large catalog queries.
"""

import asyncio
import datetime
import decimal
import json
import os
import sys
import traceback
import uuid

try:
    import asyncpg
except ImportError as e:  # the Rust test turns this into a clear failure
    print(json.dumps({"failed": "import", "error": str(e)}))
    sys.exit(2)

UTC = datetime.timezone.utc
UID = uuid.UUID("12345678-9abc-4def-8123-456789abcdef")
WHEN = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)


async def sqlstate_of(coro):
    """Awaits coro, which must fail on the server; returns the SQLSTATE."""
    try:
        await coro
    except asyncpg.PostgresError as e:
        return e.sqlstate
    return None


async def run(out):
    conn = await asyncpg.connect(
        host=os.environ["PGHOST"],
        port=int(os.environ["PGPORT"]),
        database=os.environ["PGDATABASE"],
        user=os.environ["PGUSER"],
        password=os.environ["PGPASSWORD"],
        ssl=False,
        server_settings={"application_name": "asyncpg-workload"},
    )
    out["asyncpg"] = asyncpg.__version__
    settings = conn.get_settings()
    out["client_encoding"] = settings.client_encoding
    out["is_superuser"] = settings.is_superuser
    out["session_authorization"] = settings.session_authorization
    out["completed"] = "connect"

    await conn.execute(
        "CREATE TYPE apg_mood AS ENUM ('sad', 'ok', 'happy');"
        "CREATE TABLE apg_items ("
        " id int PRIMARY KEY, name text, data bytea, amount numeric(12,3),"
        " at timestamptz, uid uuid, doc json, nums int[], labels text[], mood apg_mood)"
    )
    out["completed"] = "create"

    status = await conn.execute(
        "INSERT INTO apg_items (id, name, data, amount, at, uid, doc, nums, labels)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        1,
        "first \u00e9\u2713",
        b"\x00\x01\xfe\xff",
        decimal.Decimal("123.456"),
        WHEN,
        UID,
        json.dumps({"k": [1, 2, None], "s": "v"}),
        [1, 2, 3],
        ["x", "y z", None],
    )
    out["insert_status"] = status

    row = await conn.fetchrow(
        "SELECT id, name, data, amount, at, uid, doc, nums, labels"
        " FROM apg_items WHERE id = $1",
        1,
    )
    out["row"] = [
        row["id"],
        row["name"],
        row["data"].hex(),
        str(row["amount"]),
        row["at"].isoformat(),
        str(row["uid"]),
        json.loads(row["doc"]),
        row["nums"],
        row["labels"],
    ]

    # Parameters of every kind, echoed by the server.
    echo = await conn.fetchrow(
        "SELECT $1::int8 AS i, $2::text AS t, $3::bytea AS b, $4::numeric AS n,"
        " $5::timestamptz AS ts, $6::uuid AS u, $7::json AS j, $8::int4[] AS a,"
        " $9::text[] AS ta, $10::float8 AS f, $11::bool AS ok, $12::date AS d",
        -(2**62),
        "",
        b"",
        decimal.Decimal("-0.000001"),
        WHEN,
        UID,
        "[]",
        [],
        ["quote'd", 'dq"', "back\\slash"],
        1.5,
        True,
        datetime.date(2000, 1, 1),
    )
    out["echo"] = [
        echo["i"],
        echo["t"],
        echo["b"].hex(),
        str(echo["n"]),
        echo["ts"] == WHEN,
        echo["u"] == UID,
        echo["j"],
        echo["a"],
        echo["ta"],
        echo["f"],
        echo["ok"],
        echo["d"].isoformat(),
    ]
    out["completed"] = "types"

    await conn.executemany(
        "INSERT INTO apg_items (id, name, amount) VALUES ($1, $2, $3)",
        [(i, f"item {i}", decimal.Decimal(i) / 8) for i in range(2, 22)],
    )
    out["many_count"] = await conn.fetchval(
        "SELECT count(*) FROM apg_items WHERE id BETWEEN $1 AND $2", 2, 21
    )
    out["many_sum"] = str(
        await conn.fetchval("SELECT sum(amount) FROM apg_items WHERE id BETWEEN 2 AND 21")
    )
    out["completed"] = "executemany"

    stmt = await conn.prepare("SELECT name, amount FROM apg_items WHERE id = $1")
    out["prepared"] = [(await stmt.fetchrow(i))["name"] for i in range(2, 10)]
    out["prepared_params"] = [str(t.name) for t in stmt.get_parameters()]
    out["completed"] = "prepare"

    result = await conn.copy_records_to_table(
        "apg_items",
        records=[(100 + i, f"copied {i}", decimal.Decimal(i)) for i in range(10)],
        columns=["id", "name", "amount"],
    )
    out["copy_status"] = result
    out["copied"] = await conn.fetchval(
        "SELECT count(*) FROM apg_items WHERE name LIKE 'copied %'"
    )
    out["completed"] = "copy"

    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO apg_items (id, name) VALUES (500, 'rolled back')")
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    async with conn.transaction():
        await conn.execute("INSERT INTO apg_items (id, name) VALUES (600, 'kept')")
        try:
            async with conn.transaction():
                await conn.execute("INSERT INTO apg_items (id, name) VALUES (601, 'savepoint')")
                raise RuntimeError("roll back the savepoint")
        except RuntimeError:
            pass
    out["after_rollback"] = [
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM apg_items WHERE id IN (500, 600, 601) ORDER BY id"
        )
    ]
    out["completed"] = "transactions"

    # An enum makes asyncpg introspect the type through the catalog.
    await conn.execute("UPDATE apg_items SET mood = $1 WHERE id = $2", "happy", 1)
    out["enum"] = await conn.fetchval("SELECT mood FROM apg_items WHERE id = 1")
    out["completed"] = "introspection"

    out["division_error"] = await sqlstate_of(conn.fetchval("SELECT 1 / 0"))
    out["missing_table_error"] = await sqlstate_of(conn.fetch("SELECT * FROM no_such_table"))
    out["duplicate_error"] = await sqlstate_of(
        conn.execute("INSERT INTO apg_items (id, name) VALUES (1, 'duplicate')")
    )
    out["in_transaction_error"] = await sqlstate_of(_failing_transaction(conn))
    out["count_after_errors"] = await conn.fetchval("SELECT count(*) FROM apg_items")
    out["ids"] = [r["id"] for r in await conn.fetch("SELECT id FROM apg_items ORDER BY id")]
    await conn.close()
    out["completed"] = "done"


async def _failing_transaction(conn):
    async with conn.transaction():
        await conn.execute("INSERT INTO apg_items (id, name) VALUES (800, 'lost')")
        await conn.execute("SELECT 1 / 0")


def main():
    out = {}
    try:
        asyncio.run(run(out))
    except Exception as e:  # report the failing step to the Rust test
        out["failed"] = "after " + out.get("completed", "nothing")
        out["error"] = f"{type(e).__name__}: {e}"
        out["sqlstate"] = getattr(e, "sqlstate", None)
        out["traceback"] = traceback.format_exc()
        print(json.dumps(out, default=str))
        sys.exit(1)
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
