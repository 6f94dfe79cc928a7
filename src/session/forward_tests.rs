//! The forwarder over in-memory streams: a client and a scripted upstream
//! on `tokio::io::duplex`, a hook that forwards texts as sent.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Deadline, Secure, Session, Shown, UpstreamFields, pump};
use crate::error::PgError;
use crate::rewrite::WriteTag;
use crate::statement::Origin;
use crate::statement::hook::{Forward, Shape};
use crate::wire::backend;
use crate::wire::io::{read_body, read_header};

/// Forwards every text as sent.
struct Verbatim;

impl Secure for Verbatim {
    async fn secure_typed(
        &mut self,
        sql: &[u8],
        _origin: Origin,
        _parameter_types: &[u32],
    ) -> Result<Forward, PgError> {
        let _ = sql;
        Ok(Forward::AsSent)
    }

    fn shapes(&self) -> &[(usize, Shape)] {
        &[]
    }
}

/// One end of a duplex stream, read message by message.
struct End {
    r: BufReader<ReadHalf<DuplexStream>>,
    w: WriteHalf<DuplexStream>,
}

impl End {
    async fn send(&mut self, tag: u8, body: &[u8]) {
        let mut out = BytesMut::new();
        backend::put_message(&mut out, tag, |b| b.put_slice(body));
        self.w.write_all(&out).await.unwrap();
        self.w.flush().await.unwrap();
    }

    /// The next message, or `None` at the end of the stream.
    async fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        let header = read_header(&mut self.r, 1 << 20).await.ok()??;
        let body = read_body(&mut self.r, header.body_len).await.ok()?;
        Some((header.tag, body.to_vec()))
    }

    /// The next message, which must come within a second.
    async fn expect(&mut self, tag: u8) -> Vec<u8> {
        let got = tokio::time::timeout(Duration::from_secs(1), self.recv())
            .await
            .expect("a message within a second")
            .expect("a message, not the end of the stream");
        assert_eq!(got.0 as char, tag as char, "body {:?}", got.1);
        got.1
    }

    /// Nothing arrives for `wait`.
    async fn quiet(&mut self, wait: Duration) {
        if let Ok(got) = tokio::time::timeout(wait, self.recv()).await {
            panic!("expected nothing, got {got:?}");
        }
    }
}

fn end(stream: DuplexStream) -> End {
    let (r, w) = tokio::io::split(stream);
    End {
        r: BufReader::new(r),
        w,
    }
}

/// A forwarder between a test client and a test upstream; its task yields
/// whether the upstream was left reusable.
fn start(
    hook: impl Secure + Send + 'static,
    deadline: Option<Deadline>,
) -> (End, End, JoinHandle<(bool, u8)>) {
    let (client, proxy_client) = tokio::io::duplex(1 << 16);
    let (proxy_up, upstream) = tokio::io::duplex(1 << 16);
    let task = tokio::spawn(async move {
        let mut hook = hook;
        let (cr, cw) = tokio::io::split(proxy_client);
        let (ur, uw) = tokio::io::split(proxy_up);
        let (mut cr, mut cw) = (BufReader::new(cr), BufWriter::new(cw));
        let (mut ur, mut uw) = (BufReader::new(ur), BufWriter::new(uw));
        let (_shutdown_tx, shutdown) = watch::channel(false);
        let session = Session {
            shown: Shown {
                login: "alice",
                fields: UpstreamFields::Scrubbed,
            },
            max_message: 1 << 20,
            shutdown,
            deadline: deadline.as_ref(),
        };
        pump((&mut cr, &mut cw), (&mut ur, &mut uw), &mut hook, session).await
    });
    (end(client), end(upstream), task)
}

fn query(sql: &str) -> Vec<u8> {
    let mut b = sql.as_bytes().to_vec();
    b.push(0);
    b
}

fn command_complete(tag: &str) -> Vec<u8> {
    query(tag)
}

fn expired() -> PgError {
    PgError::fatal("28000", "token expired")
}

fn deadline_in(ms: u64) -> Option<Deadline> {
    Some(Deadline {
        at: Instant::now() + Duration::from_millis(ms),
        error: expired(),
    })
}

fn assert_fatal(body: &[u8], code: &str) {
    let fields = backend::decode_fields(body).unwrap();
    assert!(fields.contains(&(b'V', &b"FATAL"[..])), "{fields:?}");
    assert!(fields.contains(&(b'C', code.as_bytes())), "{fields:?}");
}

#[tokio::test]
async fn an_idle_session_ends_at_its_deadline() {
    let (mut client, mut upstream, task) = start(Verbatim, deadline_in(150));
    client.send(b'Q', &query("SELECT 1")).await;
    assert_eq!(upstream.expect(b'Q').await, query("SELECT 1"));
    upstream.send(b'C', &command_complete("SELECT 1")).await;
    upstream.send(b'Z', b"I").await;
    client.expect(b'C').await;
    client.expect(b'Z').await;
    // Idle and at rest: the timer ends the session, nobody sends anything.
    let started = Instant::now();
    assert_fatal(&client.expect(b'E').await, "28000");
    assert!(started.elapsed() < Duration::from_millis(500));
    assert!(client.recv().await.is_none(), "the session is closed");
    let (reusable, _) = task.await.unwrap();
    assert!(
        reusable,
        "ended at rest: the upstream goes back to the pool"
    );
}

#[tokio::test]
async fn a_running_statement_is_not_cut() {
    let (mut client, mut upstream, task) = start(Verbatim, deadline_in(50));
    client.send(b'Q', &query("SELECT pg_sleep(1)")).await;
    upstream.expect(b'Q').await;
    // The deadline passes while the statement runs.
    tokio::time::sleep(Duration::from_millis(150)).await;
    client.quiet(Duration::from_millis(50)).await;
    upstream.send(b'T', b"\0\0").await;
    upstream.send(b'D', b"\0\0").await;
    upstream.send(b'C', &command_complete("SELECT 1")).await;
    upstream.send(b'Z', b"I").await;
    client.expect(b'T').await;
    client.expect(b'D').await;
    client.expect(b'C').await;
    client.expect(b'Z').await;
    assert_fatal(&client.expect(b'E').await, "28000");
    assert!(client.recv().await.is_none());
    assert!(task.await.unwrap().0);
}

#[tokio::test]
async fn a_message_after_the_deadline_is_not_forwarded() {
    let (mut client, mut upstream, task) = start(Verbatim, deadline_in(100));
    // An extended-protocol exchange left open (no Sync): not at rest, so
    // the timer alone does not end the session.
    let mut parse = query("SELECT 1");
    parse.insert(0, 0);
    parse.extend_from_slice(&[0, 0]);
    client.send(b'P', &parse).await;
    client.send(b'H', b"").await;
    assert_eq!(upstream.expect(b'P').await, parse);
    upstream.expect(b'H').await;
    upstream.send(b'1', b"").await;
    client.expect(b'1').await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.quiet(Duration::from_millis(50)).await;
    // The next message is dropped; pgward syncs the upstream itself and
    // its ReadyForQuery does not reach the client.
    client.send(b'B', b"\0\0\0\0\0\0\0\0").await;
    let sync = upstream.expect(b'S').await;
    assert!(sync.is_empty(), "a Sync, not the client's Bind");
    upstream.send(b'Z', b"I").await;
    assert_fatal(&client.expect(b'E').await, "28000");
    assert!(client.recv().await.is_none());
    assert!(task.await.unwrap().0);
    assert!(
        upstream.recv().await.is_none(),
        "nothing else went upstream"
    );
}

#[tokio::test]
async fn without_a_deadline_an_idle_session_stays_open() {
    let (mut client, mut upstream, task) = start(Verbatim, None);
    client.send(b'Q', &query("SELECT 1")).await;
    upstream.expect(b'Q').await;
    upstream.send(b'Z', b"I").await;
    client.expect(b'Z').await;
    client.quiet(Duration::from_millis(200)).await;
    client.send(b'X', b"").await;
    assert!(task.await.unwrap().0);
}

/// Forwards every text as sent, with the shapes scripted for it; a text
/// starting with `REFUSE` is refused with 42501.
struct Scripted {
    scripts: Vec<(&'static str, Vec<(usize, Shape)>)>,
    last: Vec<(usize, Shape)>,
}

impl Scripted {
    fn new(scripts: Vec<(&'static str, Vec<(usize, Shape)>)>) -> Scripted {
        Scripted {
            scripts,
            last: Vec::new(),
        }
    }
}

impl Secure for Scripted {
    async fn secure_typed(
        &mut self,
        sql: &[u8],
        _origin: Origin,
        _parameter_types: &[u32],
    ) -> Result<Forward, PgError> {
        self.last.clear();
        if sql.starts_with(b"REFUSE") {
            return Err(PgError::error("42501", "permission denied for table t"));
        }
        if let Some((_, shapes)) = self.scripts.iter().find(|(s, _)| s.as_bytes() == sql) {
            self.last.clone_from(shapes);
        }
        Ok(Forward::Printed(sql.to_vec()))
    }

    fn shapes(&self) -> &[(usize, Shape)] {
        &self.last
    }
}

fn cstr(parts: &[&[u8]]) -> Vec<u8> {
    let mut b = Vec::new();
    for p in parts {
        b.extend_from_slice(p);
        b.push(0);
    }
    b
}

fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut b = cstr(&[name.as_bytes(), sql.as_bytes()]);
    b.extend_from_slice(&0i16.to_be_bytes());
    b
}

fn bind(portal: &str, statement: &str) -> Vec<u8> {
    let mut b = cstr(&[portal.as_bytes(), statement.as_bytes()]);
    // No parameter formats, no parameters, no result formats.
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    b
}

fn describe(kind: u8, name: &str) -> Vec<u8> {
    let mut b = vec![kind];
    b.extend_from_slice(&cstr(&[name.as_bytes()]));
    b
}

fn execute(portal: &str, max_rows: i32) -> Vec<u8> {
    let mut b = cstr(&[portal.as_bytes()]);
    b.extend_from_slice(&max_rows.to_be_bytes());
    b
}

const INSERT: &str = "INSERT INTO t VALUES (1)";
const UPDATE: &str = "UPDATE t SET a = 2 RETURNING a";

fn write_scripts() -> Vec<(&'static str, Vec<(usize, Shape)>)> {
    vec![
        (
            "SELECT 1; INSERT INTO t VALUES (1); SELECT 2",
            vec![(1, Shape::Silent)],
        ),
        (INSERT, vec![(0, Shape::Silent)]),
        (UPDATE, vec![(0, Shape::Tagged(WriteTag::Update))]),
    ]
}

/// Sends each message from the upstream.
async fn answer(upstream: &mut End, messages: &[(u8, &[u8])]) {
    for (tag, body) in messages {
        upstream.send(*tag, body).await;
    }
}

/// The next messages the client gets, as (tag, body).
async fn received(client: &mut End, n: usize) -> Vec<(u8, Vec<u8>)> {
    let mut got = Vec::new();
    for _ in 0..n {
        let m = tokio::time::timeout(Duration::from_secs(1), client.recv())
            .await
            .expect("a message within a second")
            .expect("a message");
        got.push(m);
    }
    got
}

fn tags(messages: &[(u8, Vec<u8>)]) -> String {
    messages.iter().map(|(t, _)| *t as char).collect()
}

#[tokio::test]
async fn only_the_silent_statement_of_a_query_loses_its_rows() {
    let (mut client, mut upstream, task) = start(Scripted::new(write_scripts()), None);
    let sql = "SELECT 1; INSERT INTO t VALUES (1); SELECT 2";
    client.send(b'Q', &query(sql)).await;
    assert_eq!(upstream.expect(b'Q').await, query(sql));
    let row_description = b"\0\x01a\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0";
    answer(
        &mut upstream,
        &[
            (b'T', row_description),
            (b'D', b"\0\x01\0\0\0\x011"),
            (b'C', b"SELECT 1\0"),
            // pgward's check rows of the write, one per row written.
            (b'T', row_description),
            (b'D', b"\0\x01\0\0\0\x01t"),
            (b'C', b"INSERT 0 1\0"),
            (b'T', row_description),
            (b'D', b"\0\x01\0\0\0\x012"),
            (b'C', b"SELECT 1\0"),
            (b'Z', b"I"),
        ],
    )
    .await;
    let got = received(&mut client, 8).await;
    assert_eq!(tags(&got), "TDCCTDCZ");
    assert_eq!(got[1].1, b"\0\x01\0\0\0\x011");
    assert_eq!(got[3].1, b"INSERT 0 1\0", "the write's own tag");
    assert_eq!(got[5].1, b"\0\x01\0\0\0\x012");
    // The next Query is not shaped.
    client.send(b'Q', &query("SELECT 3")).await;
    upstream.expect(b'Q').await;
    answer(
        &mut upstream,
        &[
            (b'T', row_description),
            (b'D', b"x"),
            (b'C', b"SELECT 1\0"),
            (b'Z', b"I"),
        ],
    )
    .await;
    assert_eq!(tags(&received(&mut client, 4).await), "TDCZ");
    client.send(b'X', b"").await;
    assert!(task.await.unwrap().0);
}

#[tokio::test]
async fn a_silent_prepared_write_describes_as_no_data_and_runs_unlimited() {
    let (mut client, mut upstream, task) = start(Scripted::new(write_scripts()), None);
    client.send(b'P', &parse("w", INSERT)).await;
    client.send(b'B', &bind("", "w")).await;
    client.send(b'D', &describe(b'S', "w")).await;
    client.send(b'D', &describe(b'P', "")).await;
    client.send(b'E', &execute("", 1)).await;
    client.send(b'S', b"").await;
    assert_eq!(upstream.expect(b'P').await, parse("w", INSERT));
    assert_eq!(upstream.expect(b'B').await, bind("", "w"));
    upstream.expect(b'D').await;
    upstream.expect(b'D').await;
    assert_eq!(
        upstream.expect(b'E').await,
        execute("", 0),
        "max_rows 1 would suspend the write after one check row"
    );
    upstream.expect(b'S').await;
    answer(
        &mut upstream,
        &[
            (b'1', b""),
            (b'2', b""),
            (b't', b"\0\0"),
            (b'T', b"\0\x01ok\0"),
            (b'T', b"\0\x01ok\0"),
            (b'D', b"\0\x01\0\0\0\x01t"),
            (b'D', b"\0\x01\0\0\0\x01t"),
            (b'C', b"INSERT 0 2\0"),
            (b'Z', b"I"),
        ],
    )
    .await;
    let got = received(&mut client, 7).await;
    assert_eq!(tags(&got), "12tnnCZ");
    assert_eq!(got[2].1, b"\0\0", "ParameterDescription untouched");
    assert_eq!(got[5].1, b"INSERT 0 2\0");

    // The same statement again, Executed with a row limit under another
    // portal, then an unshaped statement through the unnamed portal.
    client.send(b'B', &bind("p", "w")).await;
    client.send(b'E', &execute("p", 5)).await;
    client.send(b'P', &parse("", "SELECT 1")).await;
    client.send(b'B', &bind("", "")).await;
    client.send(b'D', &describe(b'P', "")).await;
    client.send(b'E', &execute("", 5)).await;
    client.send(b'S', b"").await;
    upstream.expect(b'B').await;
    assert_eq!(upstream.expect(b'E').await, execute("p", 0));
    upstream.expect(b'P').await;
    upstream.expect(b'B').await;
    upstream.expect(b'D').await;
    assert_eq!(upstream.expect(b'E').await, execute("", 5), "untouched");
    upstream.expect(b'S').await;
    answer(
        &mut upstream,
        &[
            (b'2', b""),
            (b'D', b"check"),
            (b'C', b"INSERT 0 1\0"),
            (b'1', b""),
            (b'2', b""),
            (b'T', b"select"),
            (b'D', b"row"),
            (b'C', b"SELECT 1\0"),
            (b'Z', b"I"),
        ],
    )
    .await;
    let got = received(&mut client, 8).await;
    assert_eq!(tags(&got), "2C12TDCZ");
    assert_eq!(got[4].1, b"select");
    assert_eq!(got[5].1, b"row");
    client.send(b'X', b"").await;
    assert!(task.await.unwrap().0);
}

#[tokio::test]
async fn a_tagged_write_keeps_its_rows_and_gets_its_own_tag() {
    let (mut client, mut upstream, task) = start(Scripted::new(write_scripts()), None);
    client.send(b'P', &parse("", UPDATE)).await;
    client.send(b'B', &bind("", "")).await;
    client.send(b'D', &describe(b'P', "")).await;
    client.send(b'E', &execute("", 0)).await;
    client.send(b'S', b"").await;
    for tag in *b"PBDES" {
        upstream.expect(tag).await;
    }
    answer(
        &mut upstream,
        &[
            (b'1', b""),
            (b'2', b""),
            (b'T', b"\0\x01a\0"),
            (b'D', b"\0\x01\0\0\0\x012"),
            (b'D', b"\0\x01\0\0\0\x012"),
            (b'C', b"SELECT 2\0"),
            (b'Z', b"I"),
        ],
    )
    .await;
    let got = received(&mut client, 7).await;
    assert_eq!(tags(&got), "12TDDCZ");
    assert_eq!(got[5].1, b"UPDATE 2\0");
    // As a simple Query too.
    client.send(b'Q', &query(UPDATE)).await;
    upstream.expect(b'Q').await;
    answer(
        &mut upstream,
        &[(b'T', b"\0\x01a\0"), (b'C', b"SELECT 0\0"), (b'Z', b"I")],
    )
    .await;
    let got = received(&mut client, 3).await;
    assert_eq!(got[1].1, b"UPDATE 0\0");
    client.send(b'X', b"").await;
    assert!(task.await.unwrap().0);
}

#[tokio::test]
async fn a_refusal_in_a_pipeline_drops_the_shapes_of_what_it_skips() {
    let (mut client, mut upstream, task) = start(Scripted::new(write_scripts()), None);
    client.send(b'P', &parse("w", INSERT)).await;
    client.send(b'B', &bind("a", "w")).await;
    client.send(b'E', &execute("a", 0)).await;
    client.send(b'P', &parse("", "REFUSE this")).await;
    client.send(b'B', &bind("b", "w")).await;
    client.send(b'E', &execute("b", 0)).await;
    client.send(b'S', b"").await;
    for tag in *b"PBE" {
        upstream.expect(tag).await;
    }
    // The refused Parse becomes a Describe of a statement that cannot
    // exist; the Bind and Execute after it are skipped.
    let poison = upstream.expect(b'D').await;
    let name = String::from_utf8_lossy(&poison[1..poison.len() - 1]).into_owned();
    upstream.expect(b'S').await;
    let error =
        format!("SERROR\0VERROR\0C26000\0Mprepared statement \"{name}\" does not exist\0\0");
    answer(
        &mut upstream,
        &[
            (b'1', b""),
            (b'2', b""),
            (b'D', b"check"),
            (b'C', b"INSERT 0 1\0"),
            (b'E', error.as_bytes()),
            (b'Z', b"I"),
        ],
    )
    .await;
    let got = received(&mut client, 5).await;
    assert_eq!(tags(&got), "12CEZ");
    let fields = backend::decode_fields(&got[3].1).unwrap();
    assert!(fields.contains(&(b'C', &b"42501"[..])), "{fields:?}");
    // The next cycle: the prepared write is still shaped.
    client.send(b'B', &bind("", "w")).await;
    client.send(b'E', &execute("", 0)).await;
    client.send(b'S', b"").await;
    for tag in *b"BES" {
        upstream.expect(tag).await;
    }
    answer(
        &mut upstream,
        &[
            (b'2', b""),
            (b'D', b"check"),
            (b'C', b"INSERT 0 1\0"),
            (b'Z', b"I"),
        ],
    )
    .await;
    assert_eq!(tags(&received(&mut client, 3).await), "2CZ");
    client.send(b'X', b"").await;
    assert!(task.await.unwrap().0);
}

#[tokio::test]
async fn closing_a_silent_statement_forgets_its_shape() {
    let (mut client, mut upstream, task) = start(Scripted::new(write_scripts()), None);
    client.send(b'P', &parse("w", INSERT)).await;
    client.send(b'C', &describe(b'S', "w")).await;
    client.send(b'P', &parse("w", "SELECT 1")).await;
    client.send(b'B', &bind("", "w")).await;
    client.send(b'E', &execute("", 3)).await;
    client.send(b'S', b"").await;
    for tag in *b"PCPB" {
        upstream.expect(tag).await;
    }
    assert_eq!(upstream.expect(b'E').await, execute("", 3));
    upstream.expect(b'S').await;
    answer(
        &mut upstream,
        &[
            (b'1', b""),
            (b'3', b""),
            (b'1', b""),
            (b'2', b""),
            (b'D', b"row"),
            (b'C', b"SELECT 1\0"),
            (b'Z', b"I"),
        ],
    )
    .await;
    assert_eq!(tags(&received(&mut client, 7).await), "1312DCZ");
    client.send(b'X', b"").await;
    assert!(task.await.unwrap().0);
}
