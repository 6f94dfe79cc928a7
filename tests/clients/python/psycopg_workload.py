"""A short psycopg 3 workload through pgward.

Connection parameters come from the environment (PGHOST, PGPORT, PGDATABASE,
PGUSER, PGPASSWORD). Prints one JSON object with what each step saw; the Rust
test (tests/integration/clients_python.rs) judges it. Exit status 0 when every
step ran, 1 when one raised unexpectedly (the JSON then says where: "failed").
"""

import datetime
import decimal
import json
import os
import sys
import traceback

try:
    import psycopg
    from psycopg import errors
except ImportError as e:  # the Rust test turns this into a clear failure
    print(json.dumps({"failed": "import", "error": str(e)}))
    sys.exit(2)

UTC = datetime.timezone.utc


def connect():
    return psycopg.connect(
        host=os.environ["PGHOST"],
        port=os.environ["PGPORT"],
        dbname=os.environ["PGDATABASE"],
        user=os.environ["PGUSER"],
        password=os.environ["PGPASSWORD"],
        sslmode="disable",
        application_name="psycopg-workload",
    )


def sqlstate_of(fn):
    """Runs fn, which must fail on the server; returns the SQLSTATE."""
    try:
        fn()
    except psycopg.Error as e:
        return e.sqlstate
    return None


def run(out):
    conn = connect()
    out["psycopg"] = psycopg.__version__
    out["client_encoding"] = conn.info.parameter_status("client_encoding")
    out["python_encoding"] = conn.info.encoding
    out["is_superuser"] = conn.info.parameter_status("is_superuser")
    out["session_authorization"] = conn.info.parameter_status("session_authorization")

    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE py_items ("
            " id int PRIMARY KEY, name text NOT NULL, price numeric(10,2),"
            " data bytea, created timestamptz, tags text[])"
        )
    conn.commit()
    out["completed"] = "create"

    # Server-side binding: Parse/Bind with the parameters sent apart.
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO py_items (id, name, price, data, created, tags)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (
                1,
                "widget \u00e9\u2713",
                decimal.Decimal("9.99"),
                b"\x00\x01\xfe\xff",
                datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
                ["a", "b c", "d,e"],
            ),
        )
        out["insert_rowcount"] = cur.rowcount
        # executemany runs as a pipeline in psycopg 3.1+.
        cur.executemany(
            "INSERT INTO py_items (id, name, price) VALUES (%s, %s, %s)",
            [(i, f"item {i}", decimal.Decimal(i) / 4) for i in range(2, 12)],
        )
        out["executemany_rowcount"] = cur.rowcount
    conn.commit()
    out["completed"] = "insert"

    # Binary results.
    with conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT id, name, price, data, created, tags FROM py_items WHERE id = %s",
            (1,),
        )
        row = cur.fetchone()
        out["binary_formats"] = [cur.pgresult.fformat(i) for i in range(6)]
        out["binary_row"] = [
            row[0],
            row[1],
            str(row[2]),
            row[3].hex(),
            row[4].astimezone(UTC).isoformat(),
            row[5],
        ]
    with conn.cursor() as cur:
        cur.execute(
            "SELECT sum(price), count(*) FROM py_items WHERE id BETWEEN %s AND %s",
            (2, 11),
            binary=True,
        )
        total, count = cur.fetchone()
        out["binary_execute"] = [str(total), count, cur.pgresult.fformat(0)]
    out["completed"] = "binary"

    # The same query more than prepare_threshold times: psycopg switches to a
    # named prepared statement.
    out["prepare_threshold"] = conn.prepare_threshold
    with conn.cursor() as cur:
        names = []
        for i in range(2, 12):
            cur.execute("SELECT name FROM py_items WHERE id = %s", (i,))
            names.append(cur.fetchone()[0])
        out["prepared_results"] = names
        cur.execute("SELECT name FROM py_items WHERE id = %s", (3,), prepare=True)
        out["explicit_prepare"] = cur.fetchone()[0]
    out["prepared_statements"] = len(conn._prepared._names)
    conn.commit()
    out["completed"] = "prepare"

    # COPY in both directions.
    with conn.cursor() as cur:
        with cur.copy("COPY py_items (id, name, price) FROM STDIN") as copy:
            for i in range(100, 110):
                copy.write_row((i, f"copied {i}", decimal.Decimal("1.50")))
        out["copy_in_rowcount"] = cur.rowcount
        rows = []
        with cur.copy(
            "COPY (SELECT id, name, price FROM py_items WHERE id >= 100 ORDER BY id) TO STDOUT"
        ) as copy:
            for row in copy.rows():
                rows.append(list(row))
        out["copy_out"] = rows
    conn.commit()
    out["completed"] = "copy"

    # A transaction rolled back, and a savepoint rolled back inside one that
    # commits.
    with conn.transaction():
        conn.execute("INSERT INTO py_items (id, name) VALUES (500, 'rolled back')")
        raise psycopg.Rollback()
    with conn.transaction():
        conn.execute("INSERT INTO py_items (id, name) VALUES (600, 'kept')")
        with conn.transaction():
            conn.execute("INSERT INTO py_items (id, name) VALUES (601, 'savepoint')")
            raise psycopg.Rollback()
    conn.commit()
    out["after_rollback"] = [
        r[0]
        for r in conn.execute(
            "SELECT id FROM py_items WHERE id IN (500, 600, 601) ORDER BY id"
        ).fetchall()
    ]
    out["completed"] = "transactions"

    # Errors, then the session goes on.
    out["division_error"] = sqlstate_of(lambda: conn.execute("SELECT 1 / 0"))
    out["status_after_error"] = conn.info.transaction_status.name
    conn.rollback()
    out["missing_table_error"] = sqlstate_of(
        lambda: conn.execute("SELECT * FROM no_such_table")
    )
    conn.rollback()
    out["duplicate_error"] = sqlstate_of(
        lambda: conn.cursor().executemany(
            "INSERT INTO py_items (id, name) VALUES (%s, %s)",
            [(700, "new"), (1, "duplicate"), (701, "never")],
        )
    )
    conn.rollback()
    out["count_after_errors"] = conn.execute("SELECT count(*) FROM py_items").fetchone()[0]
    conn.commit()

    # Autocommit and an explicit pipeline.
    conn.autocommit = True
    with conn.pipeline():
        c1 = conn.execute("SELECT %s::int + 1", (41,))
        c2 = conn.execute("SELECT upper(%s)", ("pipelined",))
    out["pipeline"] = [c1.fetchone()[0], c2.fetchone()[0]]
    out["ids"] = [r[0] for r in conn.execute("SELECT id FROM py_items ORDER BY id").fetchall()]
    conn.close()
    out["completed"] = "done"


def main():
    out = {}
    try:
        run(out)
    except Exception as e:  # report the failing step to the Rust test
        out["failed"] = "after " + out.get("completed", "nothing")
        out["error"] = f"{type(e).__name__}: {e}"
        out["sqlstate"] = getattr(e, "sqlstate", None)
        out["traceback"] = traceback.format_exc()
        print(json.dumps(out))
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
