//! Large results stream through pgward in bounded memory: a million-row
//! SELECT and a COPY TO STDOUT of the same size, drained fast and slowly,
//! while a background task samples the pgward process's resident set size;
//! and a 100,000-row COPY FROM STDIN arrives intact.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt, pin_mut};
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use crate::harness::{Pgward, PgwardOptions, TestDb};

const ROWS: i64 = 1_000_000;
const PAD: usize = 100;
const BIG_SELECT: &str = "SELECT g, repeat('x', 100) FROM generate_series(1, 1000000) g";
const BIG_COPY: &str =
    "COPY (SELECT g, repeat('x', 100) FROM generate_series(1, 1000000) g) TO STDOUT";
/// How much pgward's RSS may grow over its baseline while streaming.
const RSS_BOUND_KIB: u64 = 50 * 1024;
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// Samples pgward's RSS in the background until `finish`.
struct RssSampler {
    stop: Arc<AtomicBool>,
    task: JoinHandle<anyhow::Result<(u64, u64)>>,
}

impl RssSampler {
    fn start(pgward: Arc<Pgward>) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut peak = 0;
            let mut samples = 0;
            loop {
                peak = peak.max(pgward.rss_kib()?);
                samples += 1;
                if stopped.load(Ordering::Acquire) {
                    return Ok((peak, samples));
                }
                tokio::time::sleep(SAMPLE_EVERY).await;
            }
        });
        RssSampler { stop, task }
    }

    /// The peak RSS in KiB and the number of samples taken.
    async fn finish(self) -> anyhow::Result<(u64, u64)> {
        self.stop.store(true, Ordering::Release);
        self.task.await?
    }
}

/// pgward with one client connected and warmed up, and its RSS then.
async fn started(label: &str) -> anyhow::Result<(TestDb, Arc<Pgward>, Client, u64)> {
    let db = TestDb::new(label).await?;
    let pgward = Arc::new(db.start_pgward(PgwardOptions::default()).await?);
    let client = pgward.connect_as("alice", "alice").await?;
    // Fill the forwarding buffers once, so the baseline includes them.
    let warm = client
        .query(
            "SELECT g, repeat('x', 100) FROM generate_series(1, 10000) g",
            &[],
        )
        .await?;
    assert_eq!(warm.len(), 10_000);
    let baseline = pgward.rss_kib()?;
    Ok((db, pgward, client, baseline))
}

fn check_bound(what: &str, baseline: u64, peak: u64, samples: u64, elapsed: Duration) {
    eprintln!(
        "{what}: pgward RSS baseline {baseline} KiB, peak {peak} KiB (+{} KiB) over {samples} \
         samples, {elapsed:?}",
        peak.saturating_sub(baseline)
    );
    assert!(
        samples >= 5,
        "{what}: only {samples} RSS samples; the run was too short to judge"
    );
    assert!(
        peak < baseline + RSS_BOUND_KIB,
        "{what}: pgward's RSS grew from {baseline} KiB to {peak} KiB, more than {RSS_BOUND_KIB} KiB"
    );
}

/// Drains `BIG_SELECT`, calling `after_row` with the running row count;
/// returns the row count, the bytes of the padding column and the sum of `g`.
async fn drain_select(
    client: &Client,
    mut after_row: impl AsyncFnMut(i64) -> anyhow::Result<()>,
) -> anyhow::Result<(i64, usize, i64)> {
    let rows = client
        .query_raw(BIG_SELECT, std::iter::empty::<i32>())
        .await?;
    pin_mut!(rows);
    let (mut count, mut bytes, mut sum) = (0_i64, 0_usize, 0_i64);
    while let Some(row) = rows.next().await {
        let row = row?;
        let g: i32 = row.get(0);
        let pad: &str = row.get(1);
        count += 1;
        bytes += pad.len();
        sum += i64::from(g);
        after_row(count).await?;
    }
    Ok((count, bytes, sum))
}

fn check_select(count: i64, bytes: usize, sum: i64) {
    assert_eq!(count, ROWS);
    assert_eq!(bytes, ROWS as usize * PAD);
    assert_eq!(sum, ROWS * (ROWS + 1) / 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_row_select_streams_in_bounded_memory() -> anyhow::Result<()> {
    let (_db, pgward, client, baseline) = started("million_row_select").await?;
    let sampler = RssSampler::start(pgward.clone());
    let started = Instant::now();
    let (count, bytes, sum) = drain_select(&client, async |_| Ok(())).await?;
    let elapsed = started.elapsed();
    let (peak, samples) = sampler.finish().await?;
    check_select(count, bytes, sum);
    check_bound("1M-row SELECT", baseline, peak, samples, elapsed);

    // The session is still in step afterwards.
    let row = client.query_one("SELECT 'done'::text", &[]).await?;
    assert_eq!(row.get::<_, String>(0), "done");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_row_copy_out_streams_in_bounded_memory() -> anyhow::Result<()> {
    let (_db, pgward, client, baseline) = started("million_row_copy_out").await?;
    let sampler = RssSampler::start(pgward.clone());
    let started = Instant::now();
    let stream = client.copy_out(BIG_COPY).await?;
    pin_mut!(stream);
    let (mut bytes, mut lines) = (0_usize, 0_usize);
    let mut head = Vec::new();
    let mut tail = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bytes += chunk.len();
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
        if head.len() < 16 {
            head.extend_from_slice(&chunk[..chunk.len().min(16)]);
        }
        tail.extend_from_slice(&chunk);
        let keep = tail.len().saturating_sub(128);
        tail.drain(..keep);
    }
    let elapsed = started.elapsed();
    let (peak, samples) = sampler.finish().await?;

    // Each line: the decimal g, a tab, the padding, a newline.
    let expected: usize = (1..=ROWS as usize)
        .map(|g| g.to_string().len() + 1 + PAD + 1)
        .sum();
    assert_eq!(lines, ROWS as usize);
    assert_eq!(bytes, expected);
    assert!(head.starts_with(b"1\txxxx"), "{head:?}");
    let last = format!("\n1000000\t{}\n", "x".repeat(PAD));
    assert!(tail.ends_with(last.as_bytes()), "last line differs");
    check_bound("1M-row COPY TO STDOUT", baseline, peak, samples, elapsed);

    let row = client.query_one("SELECT 'done'::text", &[]).await?;
    assert_eq!(row.get::<_, String>(0), "done");
    Ok(())
}

/// The wait event of the upstream backend running `BIG_SELECT`, if any.
async fn big_select_wait_event(superuser: &Client) -> anyhow::Result<Option<String>> {
    let row = superuser
        .query_opt(
            "SELECT wait_event FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
               AND state = 'active' AND query LIKE '%generate_series(1, 1000000)%'",
            &[],
        )
        .await?;
    Ok(row.and_then(|r| r.get(0)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_keeps_pgward_memory_bounded() -> anyhow::Result<()> {
    const BATCH: i64 = 50_000;
    const PAUSE: Duration = Duration::from_millis(150);
    let (db, pgward, client, baseline) = started("slow_reader").await?;
    let superuser = db.superuser().await?;
    let sampler = RssSampler::start(pgward.clone());
    let started = Instant::now();
    let mut backpressure_seen = None;
    let mut pauses = 0;
    let (count, bytes, sum) = drain_select(&client, async |count| {
        if count % BATCH != 0 {
            return Ok(());
        }
        pauses += 1;
        if pauses != 3 {
            tokio::time::sleep(PAUSE).await;
            return Ok(());
        }
        // During the third pause, watch the upstream backend: with the
        // client not reading, it must end up blocked writing to pgward.
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut last = None;
        while Instant::now() < deadline {
            last = big_select_wait_event(&superuser).await?;
            if last.as_deref() == Some("ClientWrite") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        backpressure_seen = Some(last);
        Ok(())
    })
    .await?;
    let elapsed = started.elapsed();
    let (peak, samples) = sampler.finish().await?;
    check_select(count, bytes, sum);
    assert_eq!(pauses, (ROWS / BATCH) as u32);
    assert_eq!(
        backpressure_seen,
        Some(Some("ClientWrite".to_string())),
        "while the client did not read, the upstream backend was not blocked on ClientWrite: \
         pgward kept reading from the upstream"
    );
    check_bound(
        "1M-row SELECT, slow reader",
        baseline,
        peak,
        samples,
        elapsed,
    );
    Ok(())
}

/// One row of the COPY FROM data: some names need COPY text escapes, some
/// values are NULL.
fn copy_row(id: i32) -> (String, Option<i64>) {
    let name = match id % 1000 {
        1 => format!("tab\there {id}"),
        2 => format!("back\\slash {id}"),
        3 => format!("Zürich 東京 {id}"),
        4 => format!("new\nline {id}"),
        _ => format!("name-{id}"),
    };
    let val = (id % 10 != 0).then(|| i64::from(id) * 37 - 5000);
    (name, val)
}

fn copy_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_from_stdin_of_100k_rows_arrives_intact() -> anyhow::Result<()> {
    const COUNT: i32 = 100_000;
    let db = TestDb::new("copy_in_100k").await?;
    let direct = db.service().await?;
    direct
        .batch_execute("CREATE TABLE loaded (id int4 PRIMARY KEY, name text NOT NULL, val int8)")
        .await?;
    let pgward = db.start_pgward(PgwardOptions::default()).await?;
    let client = pgward.connect_as("alice", "alice").await?;

    // What is sent (COPY text format), and the same rows as the check query
    // below renders them.
    let mut wire = String::new();
    let mut canonical = Vec::with_capacity(COUNT as usize);
    let mut expected_sum = 0_i64;
    for id in 1..=COUNT {
        let (name, val) = copy_row(id);
        let shown_val = val.map_or_else(|| "NULL".to_string(), |v| v.to_string());
        let wire_val = val.map_or_else(|| "\\N".to_string(), |v| v.to_string());
        wire.push_str(&format!("{id}\t{}\t{wire_val}\n", copy_escape(&name)));
        canonical.push(format!("{id}\t{name}\t{shown_val}"));
        expected_sum += val.unwrap_or(0);
    }
    let canonical = canonical.join("\n");

    let started = Instant::now();
    let sink = client
        .copy_in("COPY loaded (id, name, val) FROM STDIN")
        .await?;
    pin_mut!(sink);
    // Chunks that do not line up with rows, as a client streaming a file sends.
    let wire = Bytes::from(wire);
    let mut at = 0;
    while at < wire.len() {
        let end = (at + 48_611).min(wire.len());
        sink.as_mut().send(wire.slice(at..end)).await?;
        at = end;
    }
    let written = sink.as_mut().finish().await?;
    let elapsed = started.elapsed();
    eprintln!(
        "COPY FROM STDIN of {COUNT} rows ({} bytes): {elapsed:?}",
        wire.len()
    );
    assert_eq!(written, COUNT as u64);

    let row = direct
        .query_one(
            "SELECT count(*), sum(val)::text, \
                    md5(string_agg(id || E'\\t' || name || E'\\t' || coalesce(val::text, 'NULL'), \
                                   E'\\n' ORDER BY id)), \
                    md5($1::text) \
             FROM loaded",
            &[&canonical],
        )
        .await?;
    assert_eq!(row.get::<_, i64>(0), i64::from(COUNT));
    assert_eq!(row.get::<_, String>(1), expected_sum.to_string());
    let (stored, sent): (String, String) = (row.get(2), row.get(3));
    assert_eq!(
        stored, sent,
        "md5 over the ordered rows differs from what was sent"
    );

    // The same session goes on, and sees the rows.
    let row = client
        .query_one("SELECT name FROM loaded WHERE id = 3003", &[])
        .await?;
    assert_eq!(row.get::<_, String>(0), "Zürich 東京 3003");
    Ok(())
}
