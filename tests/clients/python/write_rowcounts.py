"""Row counts of writes as psycopg 3 reports them (cursor.rowcount).

Run against pgward and against PostgreSQL directly by the Rust test
(tests/integration/write_clients.rs), which compares the two reports.
Connection parameters come from the environment (PGHOST, PGPORT, PGDATABASE,
PGUSER, PGPASSWORD). The table `ledger(id, owner, amount, note)` holds rows of
the login and of others; `ledger_log(id, what)` is empty. Prints one JSON
object; exit status 1 when a step raised (the JSON then says where: "failed").
"""

import json
import os
import sys
import traceback

try:
    import psycopg
except ImportError as e:  # the Rust test turns this into a clear failure
    print(json.dumps({"failed": "import", "error": str(e)}))
    sys.exit(2)


def run(out):
    me = os.environ["PGUSER"]
    conn = psycopg.connect(
        host=os.environ["PGHOST"],
        port=os.environ["PGPORT"],
        dbname=os.environ["PGDATABASE"],
        user=me,
        password=os.environ["PGPASSWORD"],
        sslmode="disable",
        autocommit=True,
    )
    insert = "INSERT INTO ledger (id, owner, amount) VALUES (%s, %s, %s)"
    with conn.cursor() as cur:
        cur.execute(insert, (100, me, 5))
        out["insert_one"] = cur.rowcount

        cur.executemany(insert, [(101 + i, me, i) for i in range(5)])
        out["executemany"] = cur.rowcount

        cur.execute("UPDATE ledger SET amount = amount + 1")
        out["update_all"] = cur.rowcount

        cur.execute("UPDATE ledger SET note = %s WHERE amount > %s", ("big", 100))
        out["update_param"] = cur.rowcount

        cur.execute("UPDATE ledger SET note = 'x' WHERE id = %s", (1,))
        out["update_hidden"] = cur.rowcount

        cur.execute("DELETE FROM ledger WHERE id = %s", (100,))
        out["delete_param"] = cur.rowcount

        cur.execute("DELETE FROM ledger WHERE id BETWEEN 101 AND 103")
        out["delete_range"] = cur.rowcount

        cur.execute(
            "INSERT INTO ledger (id, owner, amount) VALUES (%s, %s, 1) "
            "ON CONFLICT (id) DO NOTHING",
            (1, me),
        )
        out["upsert_nothing"] = cur.rowcount

        cur.execute(
            "INSERT INTO ledger (id, owner, amount) VALUES (%s, %s, 1) "
            "ON CONFLICT (id) DO UPDATE SET amount = excluded.amount",
            (2, me),
        )
        out["upsert_update"] = cur.rowcount

        cur.execute(
            "INSERT INTO ledger (id, owner, amount) "
            "SELECT 200 + g, %s, g FROM generate_series(1, 7) g",
            (me,),
        )
        out["insert_select"] = cur.rowcount

        cur.execute("UPDATE ledger SET amount = amount WHERE id > 200 RETURNING id")
        out["update_returning"] = cur.rowcount
        out["update_returning_ids"] = sorted(r[0] for r in cur.fetchall())

        with cur.copy("COPY ledger_log (id, what) FROM STDIN") as copy:
            for row in [(1, "a"), (2, "b"), (3, "c")]:
                copy.write_row(row)
        out["copy"] = cur.rowcount

        counts = []
        for _ in range(6):
            cur.execute(
                "UPDATE ledger SET note = %s WHERE id = %s", ("p", 2), prepare=True
            )
            counts.append(cur.rowcount)
        out["prepared"] = counts

    with conn.pipeline():
        c1 = conn.cursor()
        c2 = conn.cursor()
        c3 = conn.cursor()
        c1.execute("UPDATE ledger SET note = 'q' WHERE id <= %s", (10,))
        c2.execute("DELETE FROM ledger WHERE id = %s", (104,))
        c3.execute("DELETE FROM ledger WHERE id = %s", (3,))
    out["pipeline"] = [c1.rowcount, c2.rowcount, c3.rowcount]

    with conn.cursor() as cur:
        cur.execute("DELETE FROM ledger WHERE id < 200")
        out["delete_most"] = cur.rowcount
        # A data-modifying CTE: its SELECT's row count, and what it deleted.
        try:
            cur.execute(
                "WITH d AS (DELETE FROM ledger WHERE id > 204 RETURNING id) "
                "SELECT count(*) FROM d"
            )
            out["cte"] = [cur.rowcount, cur.fetchone()[0]]
        except psycopg.Error as e:
            out["cte"] = e.sqlstate
        cur.execute("DELETE FROM ledger")
        out["delete_rest"] = cur.rowcount
        cur.execute("SELECT count(*) FROM ledger")
        out["left"] = cur.fetchone()[0]
    conn.close()


def main():
    out = {}
    try:
        run(out)
    except Exception as e:  # report, then fail
        out["failed"] = type(e).__name__
        out["error"] = str(e)
        out["sqlstate"] = getattr(e, "sqlstate", None)
        out["traceback"] = traceback.format_exc()
        print(json.dumps(out))
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
