'use strict';
// Drives node-postgres (npm `pg`) through pgward and prints what it observed
// as one JSON object on stdout. The Rust test (tests/integration/clients_node.rs)
// decides what is right; this script only reports, and exits non-zero when a
// step threw.
//
// Connection: PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD (all required).
// The table `node_items (id serial primary key, name text not null, qty int)`
// must exist and be empty.

const pg = require('pg');

function connectionConfig() {
  const config = {};
  for (const [key, env] of [
    ['host', 'PGHOST'],
    ['port', 'PGPORT'],
    ['database', 'PGDATABASE'],
    ['user', 'PGUSER'],
    ['password', 'PGPASSWORD'],
  ]) {
    const value = process.env[env];
    if (!value) {
      throw new Error(`${env} is not set`);
    }
    config[key] = value;
  }
  config.port = Number(config.port);
  config.ssl = false;
  config.connectionTimeoutMillis = 10000;
  return config;
}

function describeError(e) {
  return { code: e.code ?? null, message: String(e.message) };
}

// Runs `fn` and returns its error (as {code, message}), or null when it did
// not throw: for steps that expect an error.
async function errorOf(fn) {
  try {
    await fn();
    return null;
  } catch (e) {
    return describeError(e);
  }
}

async function simpleQueries(client) {
  const one = await client.query(
    "SELECT 1 AS one, 'hello'::text AS greeting, current_database() AS db",
  );
  const multi = await client.query('SELECT 1 AS a; SELECT 2 AS b, 3 AS c');
  const empty = await client.query('SELECT 1 AS x WHERE false');
  return {
    row: one.rows[0],
    fields: one.fields.map((f) => f.name),
    command: one.command,
    multi: multi.map((r) => r.rows),
    empty_rows: empty.rows.length,
  };
}

async function extendedQueries(client) {
  const sum = await client.query({
    text: 'SELECT $1::int4 + $2::int4 AS sum, $3::text AS label',
    values: [40, 2, "it's"],
  });
  const types = await client.query({
    text:
      'SELECT $1::int4[] AS arr, $2::jsonb AS doc, $3::numeric AS num, ' +
      '$4::bigint AS big, $5::bytea AS bin, $6::text IS NULL AS was_null, ' +
      "$7::timestamptz AS ts, $8::bool AS flag",
    values: [
      [1, 2, 3],
      JSON.stringify({ k: ['v', 1] }),
      '12345.678',
      '9007199254740993',
      Buffer.from([0, 1, 254, 255]),
      null,
      new Date(Date.UTC(2024, 1, 29, 12, 30, 0)),
      true,
    ],
  });
  const t = types.rows[0];
  return {
    sum: sum.rows[0],
    arr: t.arr,
    doc: t.doc,
    num: t.num,
    big: t.big,
    bin: Buffer.from(t.bin).toString('hex'),
    was_null: t.was_null,
    ts: t.ts.toISOString(),
    flag: t.flag,
  };
}

async function namedPrepared(client, times) {
  const results = [];
  for (let i = 1; i <= times; i++) {
    const r = await client.query({
      name: 'pgward_square',
      text: 'SELECT $1::int4 * $1::int4 AS sq, $2::text AS tag',
      values: [i, `n${i}`],
    });
    results.push([r.rows[0].sq, r.rows[0].tag]);
  }
  return { times, results };
}

async function writes(client) {
  const inserted = [];
  for (const [name, qty] of [
    ['apple', 3],
    ['pear', 5],
    ['plum', null],
  ]) {
    const r = await client.query({
      text: 'INSERT INTO node_items (name, qty) VALUES ($1, $2) RETURNING id, name, qty',
      values: [name, qty],
    });
    inserted.push(r.rows[0]);
  }
  const updated = await client.query({
    text: 'UPDATE node_items SET qty = qty + $1 WHERE qty IS NOT NULL',
    values: [10],
  });
  const rows = await client.query('SELECT name, qty FROM node_items ORDER BY id');
  return {
    inserted,
    update_command: updated.command,
    update_count: updated.rowCount,
    rows: rows.rows,
  };
}

async function pool(config, clients, queries) {
  const p = new pg.Pool({ ...config, max: clients });
  try {
    // Hold every client at once, each with its own session upstream, and run
    // a query on all of them in parallel.
    const held = await Promise.all(
      Array.from({ length: clients }, () => p.connect()),
    );
    let heldPids;
    try {
      const started = Date.now();
      const r = await Promise.all(
        held.map((c, i) =>
          c.query({
            text: 'SELECT $1::int4 AS i, pg_backend_pid() AS pid, pg_sleep(0.2)::text AS slept',
            values: [i],
          }),
        ),
      );
      heldPids = {
        indexes: r.map((x) => x.rows[0].i),
        distinct_pids: new Set(r.map((x) => x.rows[0].pid)).size,
        elapsed_ms: Date.now() - started,
      };
    } finally {
      held.forEach((c) => c.release());
    }
    // Many more queries than clients: the pool queues and reuses them.
    const r = await Promise.all(
      Array.from({ length: queries }, (_, i) =>
        p.query({ text: 'SELECT $1::int4 * 2 AS doubled', values: [i] }),
      ),
    );
    return {
      held: heldPids,
      doubled: r.map((x) => x.rows[0].doubled),
      total_count: p.totalCount,
    };
  } finally {
    await p.end();
  }
}

async function transaction(client) {
  const count = async () =>
    Number((await client.query('SELECT count(*) AS n FROM node_items')).rows[0].n);
  const before = await count();
  await client.query('BEGIN');
  await client.query({
    text: 'INSERT INTO node_items (name, qty) VALUES ($1, $2)',
    values: ['rolled back', 1],
  });
  const inside = await count();
  await client.query('ROLLBACK');
  const afterRollback = await count();
  await client.query('BEGIN');
  await client.query({
    text: 'INSERT INTO node_items (name, qty) VALUES ($1, $2)',
    values: ['committed', 7],
  });
  await client.query('COMMIT');
  const afterCommit = await count();
  const rolledBack = await client.query({
    text: 'SELECT count(*)::int4 AS n FROM node_items WHERE name = $1',
    values: ['rolled back'],
  });
  return {
    before,
    inside,
    after_rollback: afterRollback,
    after_commit: afterCommit,
    rolled_back_rows: rolledBack.rows[0].n,
  };
}

async function errors(client) {
  const divide = await errorOf(() => client.query('SELECT 1/0'));
  const afterSimple = (await client.query("SELECT 'ok' AS s")).rows[0].s;
  const extended = await errorOf(() =>
    client.query({ text: 'SELECT $1::int4 / 0', values: [1] }),
  );
  const afterExtended = (
    await client.query({ text: 'SELECT $1::text AS s', values: ['ok'] })
  ).rows[0].s;
  const missing = await errorOf(() =>
    client.query('SELECT * FROM no_such_table_here'),
  );
  const syntax = await errorOf(() => client.query('SELEC 1'));
  const afterSyntax = (await client.query('SELECT 2 AS two')).rows[0].two;

  // An error inside a transaction aborts it until ROLLBACK.
  await client.query('BEGIN');
  const inTx = await errorOf(() => client.query('SELECT 1/0'));
  const aborted = await errorOf(() => client.query('SELECT 1'));
  await client.query('ROLLBACK');
  const afterTx = (await client.query('SELECT 3 AS three')).rows[0].three;

  // The named statement prepared earlier still works on this connection.
  const prepared = await client.query({
    name: 'pgward_square',
    text: 'SELECT $1::int4 * $1::int4 AS sq, $2::text AS tag',
    values: [12, 'again'],
  });
  return {
    divide,
    after_simple: afterSimple,
    extended,
    after_extended: afterExtended,
    missing,
    syntax,
    after_syntax: afterSyntax,
    in_tx: inTx,
    aborted,
    after_tx: afterTx,
    prepared_after: prepared.rows[0],
  };
}

async function main() {
  const config = connectionConfig();
  const out = {};
  let failed = false;
  const client = new pg.Client(config);
  await client.connect();
  const step = async (name, fn) => {
    const started = Date.now();
    try {
      out[name] = await fn();
    } catch (e) {
      failed = true;
      out[name] = { error: describeError(e) };
    }
    out[name].ms = Date.now() - started;
  };
  try {
    await step('simple', () => simpleQueries(client));
    await step('extended', () => extendedQueries(client));
    await step('named', () => namedPrepared(client, 25));
    await step('writes', () => writes(client));
    await step('pool', () => pool(config, 4, 40));
    await step('transaction', () => transaction(client));
    await step('errors', () => errors(client));
  } finally {
    await client.end();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exitCode = failed ? 1 : 0;
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exitCode = 2;
});
