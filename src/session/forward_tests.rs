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
use crate::statement::Origin;
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
    ) -> Result<Vec<u8>, PgError> {
        Ok(sql.to_vec())
    }

    fn shows(&self) -> &[usize] {
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
