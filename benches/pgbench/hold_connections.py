"""Open many idle PostgreSQL connections from one process and hold them.

Used by benches/pgbench.sh to measure a proxy's memory with many idle
clients. Each connection authenticates, runs `SELECT 1` (so the session is
fully set up) and then sits idle until RELEASE_FILE appears (or a time limit
passes). Once the connections are up (or have failed), one line is written to
READY_FILE:  "<opened> <failed> <first error or ->".

Uses asyncpg if importable, else psycopg 3 (async).

usage: hold_connections.py HOST PORT USER PASSWORD DBNAME COUNT READY_FILE RELEASE_FILE
"""

import asyncio
import os
import sys
import time

PARALLEL_CONNECTS = 32
CONNECT_TIMEOUT_S = 60
HOLD_LIMIT_S = 900


def driver():
    try:
        import asyncpg  # noqa: F401

        return "asyncpg"
    except ImportError:
        pass
    try:
        import psycopg  # noqa: F401

        return "psycopg"
    except ImportError:
        pass
    return None


async def connect_asyncpg(host, port, user, password, dbname):
    import asyncpg

    conn = await asyncpg.connect(
        host=host,
        port=port,
        user=user,
        password=password,
        database=dbname,
        ssl=False,
        timeout=CONNECT_TIMEOUT_S,
        statement_cache_size=0,
    )
    await conn.execute("SELECT 1")
    return conn


async def connect_psycopg(host, port, user, password, dbname):
    import psycopg

    conn = await psycopg.AsyncConnection.connect(
        host=host,
        port=port,
        user=user,
        password=password,
        dbname=dbname,
        sslmode="disable",
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT_S,
    )
    await conn.execute("SELECT 1")
    return conn


async def main(argv):
    host, port, user, password, dbname = argv[1:6]
    count = int(argv[6])
    ready_file, release_file = argv[7], argv[8]
    name = driver()
    if name is None:
        with open(ready_file, "w") as f:
            f.write("0 %d no-driver(asyncpg/psycopg)\n" % count)
        return 2
    connect = connect_asyncpg if name == "asyncpg" else connect_psycopg

    gate = asyncio.Semaphore(PARALLEL_CONNECTS)
    errors = []

    async def one():
        async with gate:
            try:
                return await connect(host, int(port), user, password, dbname)
            except Exception as e:  # keep going: the count of failures is the result
                errors.append("%s: %s" % (type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else ""))
                return None

    conns = [c for c in await asyncio.gather(*(one() for _ in range(count))) if c is not None]
    first = errors[0].replace("\n", " ") if errors else "-"
    tmp = ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d %s [%s]\n" % (len(conns), len(errors), first, name))
    os.replace(tmp, ready_file)

    deadline = time.monotonic() + HOLD_LIMIT_S
    while not os.path.exists(release_file) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)

    for c in conns:
        try:
            await c.close()
        except Exception:
            pass
    return 0 if not errors else 1


if __name__ == "__main__":
    if len(sys.argv) != 9:
        sys.stderr.write(__doc__)
        sys.exit(2)
    sys.exit(asyncio.run(main(sys.argv)))
