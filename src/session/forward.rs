//! Forwarding between an authenticated client and its upstream connection.
//!
//! Client → upstream: Query and Parse go through the statement hook and are
//! re-encoded with the printed SQL; every other allowed message is streamed
//! through untouched. Upstream → client: everything is streamed through
//! untouched (DataRow and CopyData are never decoded) except ParameterStatus
//! (the service identity never shows), the errors pgward substitutes, the
//! tag of the results that answer `SHOW search_path` and the identity
//! settings (pgward answers them with a SELECT of the client's own value;
//! the client sees `SHOW`), and, for policy-bound sessions, ErrorResponse
//! and NoticeResponse: only the fields in [`KEPT_FIELDS`] reach the client
//! (DETAIL, CONTEXT and the data fields can quote rows the policies hide).
//!
//! Refusals keep the response order: instead of the refused message pgward
//! sends the upstream a `Describe` of a statement name that cannot exist (a
//! random "poison" name). PostgreSQL answers it with an error at exactly the
//! place the refusal belongs, aborts an open transaction and skips to Sync as
//! it would for its own error; the upstream → client side swaps that error
//! for pgward's. Memory stays bounded: both directions move bytes through
//! fixed-size buffers and wait for the slower side (backpressure).
//!
//! Must never: forward Query or Parse text that did not come from the hook;
//! pass an upstream error or notice field outside [`KEPT_FIELDS`] to a
//! policy-bound client.

mod shaping;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::watch;

use crate::config::Config;
use crate::error::{PgError, code};
use crate::net::Stream;
use crate::statement::Origin;
use crate::statement::hook::{Forward, Hook, Shape};

use self::shaping::{Action, Expect, Expectations, Shaper, Verdict};
use crate::wire::io::{
    Header, WireError, copy_body, read_body, read_body_into, read_header, skip_body, whole_message,
};
use crate::wire::{HEADER_LEN, MAX_STREAMED_LEN, backend, frontend};

const BUFFER: usize = 64 * 1024;

/// PostgreSQL's limit for the messages that carry only names and counts
/// (Describe, Execute, Close): `PQ_SMALL_MESSAGE_LIMIT` in
/// `src/include/libpq/libpq.h`.
const SMALL_MESSAGE_LIMIT: usize = 10_000;

/// What the upstream's ErrorResponse and NoticeResponse messages may show
/// the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFields {
    /// Every field as PostgreSQL sent it (BYPASSPOLICY sessions).
    AsSent,
    /// Only [`KEPT_FIELDS`] (policy-bound sessions).
    Scrubbed,
}

/// The fields of an upstream error or notice a policy-bound client sees
/// (<https://www.postgresql.org/docs/15/protocol-error-fields.html>):
/// severity (`S`, `V`), SQLSTATE (`C`), message (`M`) and hint (`H`).
/// A hint is advice PostgreSQL writes from the statement and the catalog,
/// never from row contents. Everything else is dropped, including field
/// types PostgreSQL may add later: detail (`D`: "Failing row contains (…)",
/// "Key (id)=(7) already exists"), context (`W`: PL/pgSQL lines and the
/// values of `JSON data, line 1: …`), internal query and position (`q`,
/// `p`: SQL run inside a function), schema, table, column, data type and
/// constraint names (`s`, `t`, `c`, `d`, `n`), the position (`P`: an
/// offset into the SQL pgward printed, not into the client's text, so a
/// client would point at the wrong place), and the server's source file,
/// line and routine (`F`, `L`, `R`: nothing a client can act on).
const KEPT_FIELDS: &[u8] = b"SVCMH";

/// SQLSTATE of the error sent in place of an upstream ErrorResponse that
/// cannot be read (internal_error).
const INTERNAL_ERROR: &str = "XX000";

/// An error pgward will put in place of the upstream's answer to a poison.
struct Pending {
    /// Index of the ReadyForQuery cycle the poison belongs to.
    cycle: u64,
    name: String,
    error: PgError,
}

type PendingQueue = Arc<Mutex<VecDeque<Pending>>>;

enum ClientEnd {
    /// Terminate or a closed socket.
    Closed,
    /// A fatal error was handed to the other direction to send.
    Fatal,
    /// A message arrived after the session deadline; the other direction
    /// ends the session once the upstream is at rest.
    Expired,
}

/// When a session must end, and the FATAL error it ends with (a token's
/// expiry). Checked when a client message arrives (the message is not
/// forwarded) and by a timer while the upstream is at rest; a running
/// statement is never cut: the error follows its answer.
#[derive(Debug, Clone)]
pub struct Deadline {
    pub at: tokio::time::Instant,
    pub error: PgError,
}

/// Where the two directions stand, so that the session can tell whether the
/// upstream connection is at rest (every answer delivered, nothing open).
#[derive(Default)]
struct Progress {
    /// ReadyForQuery-producing messages sent upstream (Query, Sync).
    sent: AtomicU64,
    /// ReadyForQuery messages fully passed to the client.
    received: AtomicU64,
    /// Extended-protocol messages sent since the last Sync.
    unsynced: AtomicBool,
    /// Transaction status of the last ReadyForQuery.
    status: AtomicU8,
    /// Answers to reshape, in the order they will arrive.
    expectations: Expectations,
    /// The ReadyForQuery cycle of a Sync pgward sent itself (0: none): its
    /// ReadyForQuery is not the client's.
    own_sync: AtomicU64,
    /// A fatal error the client side handed to the upstream side to send
    /// at a message boundary, after which the client side ends. Both sides
    /// are polled by one task, which polls the upstream side next (see
    /// [`pump`]), so no wake-up is needed.
    fatal: Mutex<Option<PgError>>,
}

impl Progress {
    fn at_rest(&self) -> bool {
        self.sent.load(Ordering::Acquire) == self.received.load(Ordering::Acquire)
            && !self.unsynced.load(Ordering::Acquire)
    }

    fn take_fatal(&self) -> Option<PgError> {
        lock(&self.fatal).take()
    }

    /// A ReadyForQuery-producing message (Query, Sync) went upstream as
    /// cycle `cycle + 1`.
    fn cycle_sent(&self, cycle: &mut u64) {
        *cycle += 1;
        self.sent.store(*cycle, Ordering::Release);
        self.unsynced.store(false, Ordering::Release);
    }
}

/// How forwarding ended.
pub struct Ended {
    /// The upstream stream, when it was left at rest and can be reused.
    pub upstream: Option<Stream>,
    /// Transaction status of the last ReadyForQuery.
    pub status: u8,
}

/// Forwards until the client leaves, the upstream fails, `shutdown` turns
/// true (then the session ends with 57P01 once it is at rest), or the
/// `deadline` passes (then it ends with the deadline's error, see
/// [`Deadline`]).
#[allow(clippy::too_many_arguments)] // one call site, in the session
pub async fn run(
    client: Stream,
    upstream: Stream,
    login: &str,
    config: &Config,
    hook: &mut Hook,
    fields: UpstreamFields,
    shutdown: watch::Receiver<bool>,
    deadline: Option<Deadline>,
) -> std::io::Result<Ended> {
    let (client_r, client_w) = crate::net::split(client);
    let (up_r, up_w) = crate::net::split(upstream);
    let mut client_r = BufReader::with_capacity(BUFFER, client_r);
    let mut client_w = BufWriter::with_capacity(BUFFER, client_w);
    let mut up_r = BufReader::with_capacity(BUFFER, up_r);
    let mut up_w = BufWriter::with_capacity(BUFFER, up_w);
    let session = Session {
        shown: Shown { login, fields },
        max_message: config.server.max_message_size,
        shutdown,
        deadline: deadline.as_ref(),
    };
    let (reusable, status) = pump(
        (&mut client_r, &mut client_w),
        (&mut up_r, &mut up_w),
        hook,
        session,
    )
    .await;
    if !reusable || !up_r.buffer().is_empty() || up_w.flush().await.is_err() {
        return Ok(Ended {
            upstream: None,
            status,
        });
    }
    Ok(Ended {
        upstream: crate::net::unsplit(up_r.into_inner(), up_w.into_inner()),
        status,
    })
}

/// What a session's forwarding needs besides its streams and hook.
struct Session<'a> {
    shown: Shown<'a>,
    max_message: usize,
    shutdown: watch::Receiver<bool>,
    deadline: Option<&'a Deadline>,
}

/// The statement hook as the forwarder uses it (a trait so that the
/// forwarder can be tested over in-memory streams with a scripted hook).
pub trait Secure {
    /// The SQL to forward for a Query (`parameter_types` empty) or Parse
    /// text, or the refusal.
    fn secure_typed(
        &mut self,
        sql: &[u8],
        origin: Origin,
        parameter_types: &[u32],
    ) -> impl Future<Output = Result<Forward, PgError>> + Send;

    /// The statements of the text last secured whose result the client
    /// must see in another shape, by position, in order.
    fn shapes(&self) -> &[(usize, Shape)];

    /// Whether a Query or Parse text goes upstream as sent, without
    /// `secure_typed`; then it has been logged, and has no shapes.
    fn passes_as_sent(&mut self, _sql: &str) -> bool {
        false
    }
}

impl Secure for Hook {
    fn secure_typed(
        &mut self,
        sql: &[u8],
        origin: Origin,
        parameter_types: &[u32],
    ) -> impl Future<Output = Result<Forward, PgError>> + Send {
        Hook::secure_typed(self, sql, origin, parameter_types)
    }

    fn shapes(&self) -> &[(usize, Shape)] {
        Hook::shapes(self)
    }

    fn passes_as_sent(&mut self, sql: &str) -> bool {
        Hook::passes_as_sent(self, sql)
    }
}

/// Both directions of one session; whether the upstream was left at rest
/// and reusable, and the last transaction status.
async fn pump<CR, CW, UR, UW, H>(
    (client_r, client_w): (&mut BufReader<CR>, &mut BufWriter<CW>),
    (up_r, up_w): (&mut BufReader<UR>, &mut BufWriter<UW>),
    hook: &mut H,
    session: Session<'_>,
) -> (bool, u8)
where
    CR: tokio::io::AsyncRead + Unpin,
    CW: tokio::io::AsyncWrite + Unpin,
    UR: tokio::io::AsyncRead + Unpin,
    UW: tokio::io::AsyncWrite + Unpin,
    H: Secure,
{
    let Session {
        shown,
        max_message,
        mut shutdown,
        deadline,
    } = session;
    let pending: PendingQueue = Arc::default();
    let progress = Progress {
        status: AtomicU8::new(b'I'),
        ..Progress::default()
    };

    let reusable = {
        let to_upstream = client_to_upstream(
            client_r,
            up_w,
            hook,
            &pending,
            &progress,
            max_message,
            deadline,
        );
        let to_client = upstream_to_client(
            up_r,
            client_w,
            &pending,
            &progress,
            &mut shutdown,
            deadline,
            shown,
        );
        tokio::pin!(to_upstream, to_client);
        tokio::select! {
            biased;
            end = &mut to_upstream => match end {
                // The other direction is parked waiting for upstream data
                // when the connection is at rest; dropping it there is safe.
                Ok(ClientEnd::Closed) => progress.at_rest(),
                Ok(ClientEnd::Fatal) => {
                    // Let the other side deliver the error at a message boundary.
                    let _ = tokio::time::timeout(Duration::from_secs(5), &mut to_client).await;
                    false
                }
                // The running statement is not cut: wait for its answer.
                Ok(ClientEnd::Expired) => {
                    matches!(to_client.await, Ok(true)) && progress.at_rest()
                }
                Err(e) => {
                    tracing::debug!("client connection failed: {e}");
                    false
                }
            },
            end = &mut to_client => match end {
                Ok(at_rest) => at_rest && progress.at_rest(),
                Err(e) => {
                    tracing::debug!("forwarding to the client failed: {e}");
                    false
                }
            }
        }
    };
    (reusable, progress.status.load(Ordering::Acquire))
}

/// Pumps client messages to the upstream until the client leaves.
#[allow(clippy::too_many_arguments)]
async fn client_to_upstream<R, W, H>(
    r: &mut BufReader<R>,
    w: &mut BufWriter<W>,
    hook: &mut H,
    pending: &PendingQueue,
    progress: &Progress,
    max_message: usize,
    deadline: Option<&Deadline>,
) -> std::io::Result<ClientEnd>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
    H: Secure,
{
    // ReadyForQuery-producing messages sent so far (Sync, Query).
    let mut cycle: u64 = 0;
    // After a refused extended-protocol message, skip to Sync as PostgreSQL does.
    let mut skipping = false;
    // Messages the upstream answers (Parse, Bind, Describe, Execute,
    // Close) sent in the current cycle, and the prepared statements and
    // portals whose results are reshaped.
    let mut message: u64 = 0;
    let mut shaped = Shaped::default();
    let mut out = BytesMut::new();
    // The body of the last Query or Parse.
    let mut body = BytesMut::new();
    macro_rules! refuse_fatal {
        ($err:expr) => {{
            w.flush().await?;
            *lock(&progress.fatal) = Some($err);
            return Ok(ClientEnd::Fatal);
        }};
    }
    loop {
        // The common case goes without a per-message await: the whole
        // messages at the front of the buffer that pass unchanged, with
        // their bookkeeping, leave in one write.
        if !skipping && shaped.is_empty() && deadline.is_none() {
            if r.buffer().is_empty() && r.fill_buf().await?.is_empty() {
                return Ok(ClientEnd::Closed);
            }
            let run = passing_client_run(
                r.buffer(),
                hook,
                max_message,
                (&mut cycle, &mut message),
                progress,
            );
            if run > 0 {
                pass_run(r, w, run).await?;
                continue;
            }
        }
        let header = match read_header(r, MAX_STREAMED_LEN).await {
            Ok(Some(h)) => h,
            Ok(None) | Err(WireError::Eof) => return Ok(ClientEnd::Closed),
            Err(WireError::Io(e)) => return Err(e),
            Err(e @ (WireError::BadLength(_) | WireError::TooLarge { .. })) => {
                refuse_fatal!(PgError::fatal(
                    code::PROTOCOL_VIOLATION,
                    format!("invalid frontend message: {e}")
                ))
            }
        };
        // COPY data belongs to the running statement, and Terminate ends
        // the session anyway.
        if let Some(d) = deadline
            && !matches!(header.tag, b'd' | b'c' | b'f' | b'X')
            && tokio::time::Instant::now() >= d.at
        {
            if progress.unsynced.load(Ordering::Acquire) {
                // Bring the upstream to rest for the pool; the client never
                // sees this Sync's ReadyForQuery.
                cycle += 1;
                progress.own_sync.store(cycle, Ordering::Release);
                out.clear();
                backend::put_message(&mut out, b'S', |_| {});
                w.write_all(&out).await?;
                progress.sent.store(cycle, Ordering::Release);
                progress.unsynced.store(false, Ordering::Release);
            }
            w.flush().await?;
            return Ok(ClientEnd::Expired);
        }
        if skipping && !matches!(header.tag, b'S' | b'X') {
            skip_or_eof(r, header.body_len).await?;
            continue;
        }
        match header.tag {
            b'Q' | b'P' => {
                if header.body_len > max_message {
                    refuse_fatal!(PgError::fatal(
                        code::PROTOCOL_VIOLATION,
                        format!(
                            "message of {} bytes exceeds server.max_message_size ({max_message})",
                            header.body_len
                        )
                    ))
                }
                if body.capacity() > BUFFER {
                    // Not kept after a large statement.
                    body = BytesMut::new();
                }
                match read_body_into(r, header.body_len, &mut body).await {
                    Ok(()) => {}
                    Err(WireError::Io(e)) => return Err(e),
                    Err(_) => return Ok(ClientEnd::Closed),
                }
                out.clear();
                let outcome = if header.tag == b'Q' {
                    progress.cycle_sent(&mut cycle);
                    secure_query(&body, hook, &mut out).await
                } else {
                    progress.unsynced.store(true, Ordering::Release);
                    secure_parse(&body, hook, &mut out).await
                };
                match outcome {
                    Ok(()) if header.tag == b'Q' => {
                        // A Query ends the unnamed statement and portal.
                        if !shaped.is_empty() {
                            shaped.statements.remove(&b""[..]);
                            shaped.portals.remove(&b""[..]);
                        }
                        for &(statement, shape) in hook.shapes() {
                            progress.expectations.push(Expect {
                                cycle: cycle - 1,
                                message,
                                action: Action::Query {
                                    statement: statement as u64,
                                    shape,
                                },
                            });
                        }
                    }
                    Ok(()) => {
                        if let Some(parse) = frontend::decode_parse(&body) {
                            match hook.shapes().first() {
                                Some(&(_, shape)) => {
                                    shaped.statements.insert(parse.name.to_vec(), shape);
                                }
                                None => {
                                    shaped.statements.remove(parse.name);
                                }
                            }
                        }
                    }
                    Err(Refusal::Statement(error)) => {
                        tracing::info!(code = error.code, "statement refused: {}", error.message);
                        let name = poison_name();
                        lock(pending).push_back(Pending {
                            cycle: cycle - u64::from(header.tag == b'Q'),
                            name: name.clone(),
                            error,
                        });
                        put_poison(&mut out, &name, header.tag == b'Q');
                        skipping = header.tag == b'P';
                    }
                    Err(Refusal::Malformed) => refuse_fatal!(PgError::fatal(
                        code::PROTOCOL_VIOLATION,
                        format!("malformed {} message", header.tag as char)
                    )),
                }
                if header.tag == b'Q' {
                    message = 0;
                } else {
                    message += 1;
                }
                w.write_all(&out).await?;
            }
            b'S' => {
                skipping = false;
                message = 0;
                progress.cycle_sent(&mut cycle);
                forward_message(r, w, header).await?;
            }
            // Terminate ends the session; the upstream connection stays
            // open for the pool.
            b'X' => {
                w.flush().await?;
                return Ok(ClientEnd::Closed);
            }
            // Bind, Describe, Execute and Close are looked at only while a
            // prepared statement or portal is reshaped.
            b'B' if !shaped.is_empty() => {
                progress.unsynced.store(true, Ordering::Release);
                message += 1;
                let (names, rest) = forward_names(r, w, header, 2).await?;
                copy_or_eof(r, w, rest).await?;
                if let [portal, statement] = names.as_slice() {
                    shaped.bind(portal, statement);
                }
            }
            b'D' | b'E' | b'C' if !shaped.is_empty() => {
                progress.unsynced.store(true, Ordering::Release);
                let at = (cycle, message);
                message += 1;
                // A name and a row count: PostgreSQL refuses longer ones
                // the same way.
                if header.body_len > SMALL_MESSAGE_LIMIT {
                    refuse_fatal!(PgError::fatal(
                        code::PROTOCOL_VIOLATION,
                        format!("invalid message length {}", header.body_len)
                    ))
                }
                let mut body = match read_body(r, header.body_len).await {
                    Ok(b) => b,
                    Err(WireError::Io(e)) => return Err(e),
                    Err(_) => return Ok(ClientEnd::Closed),
                };
                // Queued before the message goes upstream, so before its
                // answer can arrive.
                shaped.reshape(header.tag, &mut body, at, &progress.expectations);
                w.write_all(&header.to_bytes()).await?;
                w.write_all(&body).await?;
            }
            b'B' | b'D' | b'E' | b'C' => {
                progress.unsynced.store(true, Ordering::Release);
                message += 1;
                forward_message(r, w, header).await?;
            }
            b'H' => {
                progress.unsynced.store(true, Ordering::Release);
                forward_message(r, w, header).await?;
            }
            b'd' | b'c' | b'f' => {
                forward_message(r, w, header).await?;
            }
            b'F' => refuse_fatal!(PgError::fatal(
                code::FEATURE_NOT_SUPPORTED,
                "the fast-path function call interface is not supported by pgward"
            )),
            b'p' => refuse_fatal!(PgError::fatal(
                code::PROTOCOL_VIOLATION,
                "unexpected authentication message after authentication"
            )),
            other => refuse_fatal!(PgError::fatal(
                code::PROTOCOL_VIOLATION,
                format!("invalid frontend message type {other}")
            )),
        }
        if r.buffer().is_empty() {
            w.flush().await?;
        }
    }
}

/// The length of the whole client messages at the front of `buf` that go
/// upstream unchanged while nothing is reshaped and no refusal is being
/// skipped (Bind, Describe, Execute, Close, Flush, Sync, COPY data, and the
/// Query and Parse messages whose text `hook` lets pass as sent), after
/// doing the bookkeeping the message-by-message path does for them. Stops
/// at anything else (other Query and Parse messages, those that are too
/// long, malformed or not UTF-8, Terminate, a bad length, a cut-off
/// message), which that path then reads.
fn passing_client_run<H: Secure>(
    buf: &[u8],
    hook: &mut H,
    max_message: usize,
    (cycle, message): (&mut u64, &mut u64),
    progress: &Progress,
) -> usize {
    let mut at = 0;
    while let Some((tag, len)) = whole_message(&buf[at..]) {
        let body = &buf[at + HEADER_LEN..at + len];
        match tag {
            b'Q' | b'P' if body.len() <= max_message => {
                let text = if tag == b'Q' {
                    frontend::decode_query(body)
                } else {
                    frontend::decode_parse(body).map(|p| p.query)
                };
                let passes = text
                    .and_then(|t| std::str::from_utf8(t).ok())
                    .is_some_and(|t| hook.passes_as_sent(t));
                if !passes {
                    break;
                }
                if tag == b'Q' {
                    *message = 0;
                    progress.cycle_sent(cycle);
                } else {
                    *message += 1;
                    progress.unsynced.store(true, Ordering::Release);
                }
            }
            b'B' | b'D' | b'E' | b'C' => {
                progress.unsynced.store(true, Ordering::Release);
                *message += 1;
            }
            b'H' => progress.unsynced.store(true, Ordering::Release),
            b'S' => {
                *message = 0;
                progress.cycle_sent(cycle);
            }
            b'd' | b'c' | b'f' => {}
            _ => break,
        }
        at += len;
    }
    at
}

enum Refusal {
    Statement(PgError),
    Malformed,
}

/// The prepared statements and portals whose results are reshaped, by name.
#[derive(Default)]
struct Shaped {
    statements: HashMap<Vec<u8>, Shape>,
    portals: HashMap<Vec<u8>, Shape>,
}

impl Shaped {
    fn is_empty(&self) -> bool {
        self.statements.is_empty() && self.portals.is_empty()
    }

    /// A Bind of `statement` to `portal`: the portal takes its shape.
    fn bind(&mut self, portal: &[u8], statement: &[u8]) {
        match self.statements.get(statement) {
            Some(&shape) => {
                self.portals.insert(portal.to_vec(), shape);
            }
            None => {
                self.portals.remove(portal);
            }
        }
    }

    /// A Describe, Execute or Close body (message `at` of its cycle):
    /// queues what its answer needs and lets a Silent portal's Execute run
    /// without a row limit (PostgreSQL would otherwise suspend the write's
    /// portal after that many of pgward's check rows, which the client
    /// never sees). A malformed body is left as it is, for PostgreSQL to
    /// refuse.
    fn reshape(
        &mut self,
        tag: u8,
        body: &mut [u8],
        (cycle, message): (u64, u64),
        queue: &Expectations,
    ) {
        match tag {
            b'D' | b'C' => {
                let [kind, rest @ ..] = &*body else { return };
                let Some(name) = rest.strip_suffix(&[0]) else {
                    return;
                };
                let names = match kind {
                    b'S' => &mut self.statements,
                    b'P' => &mut self.portals,
                    _ => return,
                };
                if tag == b'C' {
                    names.remove(name);
                } else if names.get(name).is_some_and(|s| s.rowless()) {
                    queue.push(Expect {
                        cycle,
                        message,
                        action: Action::NoData,
                    });
                }
            }
            b'E' => {
                let Some(end) = body.iter().position(|&b| b == 0) else {
                    return;
                };
                if body.len() != end + 5 {
                    return;
                }
                let Some(&shape) = self.portals.get(&body[..end]) else {
                    return;
                };
                queue.push(Expect {
                    cycle,
                    message,
                    action: Action::Execute(shape),
                });
                if shape.rowless() {
                    body[end + 1..].fill(0);
                }
            }
            _ => {}
        }
    }
}

async fn secure_query<H: Secure>(
    body: &[u8],
    hook: &mut H,
    out: &mut BytesMut,
) -> Result<(), Refusal> {
    let sql = frontend::decode_query(body).ok_or(Refusal::Malformed)?;
    let forward = hook
        .secure_typed(sql, Origin::Query, &[])
        .await
        .map_err(Refusal::Statement)?;
    let printed = match &forward {
        Forward::AsSent => sql,
        Forward::Printed(printed) => printed,
    };
    backend::put_message(out, b'Q', |b| {
        b.put_slice(printed);
        b.put_u8(0);
    });
    Ok(())
}

async fn secure_parse<H: Secure>(
    body: &[u8],
    hook: &mut H,
    out: &mut BytesMut,
) -> Result<(), Refusal> {
    let parse = frontend::decode_parse(body).ok_or(Refusal::Malformed)?;
    let forward = hook
        .secure_typed(parse.query, Origin::Parse, &parse.param_types)
        .await
        .map_err(Refusal::Statement)?;
    let printed = match &forward {
        Forward::AsSent => parse.query,
        Forward::Printed(printed) => printed,
    };
    backend::put_message(out, b'P', |b| {
        b.put_slice(parse.name);
        b.put_u8(0);
        b.put_slice(printed);
        b.put_u8(0);
        b.put_i16(i16::try_from(parse.param_types.len()).unwrap_or(i16::MAX));
        for t in &parse.param_types {
            b.put_u32(*t);
        }
    });
    Ok(())
}

fn poison_name() -> String {
    format!("pgward_refused_{:016x}", rand::random::<u64>())
}

/// Describe of a statement that does not exist, plus Sync in place of a
/// simple Query (which has a ReadyForQuery of its own).
fn put_poison(out: &mut BytesMut, name: &str, with_sync: bool) {
    backend::put_message(out, b'D', |b| {
        b.put_u8(b'S');
        b.put_slice(name.as_bytes());
        b.put_u8(0);
    });
    if with_sync {
        backend::put_message(out, b'S', |_| {});
    }
}

async fn forward_message<R, W>(
    r: &mut BufReader<R>,
    w: &mut BufWriter<W>,
    header: Header,
) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    w.write_all(&header.to_bytes()).await?;
    copy_or_eof(r, w, header.body_len).await
}

/// Forwards the start of a message whose body starts with `count` names (C
/// strings); returns the names and the length of the rest, which the caller
/// streams with [`copy_or_eof`] (the upstream cannot act on the message
/// before).
async fn forward_names<R, W>(
    r: &mut BufReader<R>,
    w: &mut BufWriter<W>,
    header: Header,
    count: usize,
) -> std::io::Result<(Vec<Vec<u8>>, usize)>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncReadExt;
    w.write_all(&header.to_bytes()).await?;
    let mut names = Vec::with_capacity(count);
    let mut used = 0;
    while names.len() < count && used < header.body_len {
        let mut name = Vec::new();
        while used < header.body_len {
            let b = r.read_u8().await?;
            used += 1;
            w.write_u8(b).await?;
            if b == 0 {
                break;
            }
            name.push(b);
        }
        names.push(name);
    }
    Ok((names, header.body_len - used))
}

async fn skip_or_eof<R: tokio::io::AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    len: usize,
) -> std::io::Result<()> {
    match skip_body(r, len).await {
        Ok(()) => Ok(()),
        Err(WireError::Io(e)) => Err(e),
        Err(_) => Err(std::io::ErrorKind::UnexpectedEof.into()),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the upstream → client side shows of the upstream's own messages.
#[derive(Clone, Copy)]
struct Shown<'a> {
    /// Stands in for the service identity in ParameterStatus.
    login: &'a str,
    fields: UpstreamFields,
}

/// Pumps upstream messages to the client until either side ends; `true`
/// when it ended the session at rest because the deadline passed.
#[allow(clippy::too_many_arguments)]
async fn upstream_to_client<R, W>(
    r: &mut BufReader<R>,
    w: &mut BufWriter<W>,
    pending: &PendingQueue,
    progress: &Progress,
    shutdown: &mut watch::Receiver<bool>,
    deadline: Option<&Deadline>,
    shown: Shown<'_>,
) -> std::io::Result<bool>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut cycle: u64 = 0;
    // Where the answers stand, for the results to reshape.
    let mut shaper = Shaper::default();
    // The shaper's verdict on the next message, when the fast path asked
    // for it and left the message to the message-by-message path.
    let mut carried: Option<Verdict> = None;
    let mut upstream_fatal = false;
    let mut shutting_down = *shutdown.borrow();
    // One wait for the whole session rather than one per message. The
    // session task's waker is registered with it once; after that it is
    // only polled again when the channel changed.
    let probe = shutdown.clone();
    let stop = async {
        while shutdown.changed().await.is_ok() {
            if *shutdown.borrow() {
                return;
            }
        }
    };
    tokio::pin!(stop);
    let mut waiting = false;
    let mut stop = std::future::poll_fn(move |cx| {
        if waiting && matches!(probe.has_changed(), Ok(false)) {
            return Poll::Pending;
        }
        waiting = true;
        stop.as_mut().poll(cx)
    });
    let mut expired = false;
    // Polled only while a deadline is set and has not passed.
    let timer = tokio::time::sleep_until(deadline.map_or_else(
        || tokio::time::Instant::now() + Duration::from_secs(86_400),
        |d| d.at,
    ));
    tokio::pin!(timer);
    let mut out = BytesMut::new();
    loop {
        if shutting_down && progress.at_rest() {
            let err = PgError::fatal(
                code::ADMIN_SHUTDOWN,
                "terminating connection due to administrator command",
            );
            return crate::session::send_error(w, &err).await.map(|()| false);
        }
        if let Some(d) = deadline
            && expired
            && progress.at_rest()
        {
            return crate::session::send_error(w, &d.error).await.map(|()| true);
        }
        // Waiting for data is the only cancel-safe point; a whole message
        // is then handled without interruption. With data already buffered
        // (a result streaming through) only a pending fatal error is looked
        // at, without waiting.
        if !r.buffer().is_empty() {
            if let Some(err) = progress.take_fatal() {
                return crate::session::send_error(w, &err).await.map(|()| false);
            }
        } else {
            tokio::select! {
                biased;
                err = std::future::poll_fn(|_| progress.take_fatal().map_or(Poll::Pending, Poll::Ready)) => {
                    return crate::session::send_error(w, &err).await.map(|()| false);
                }
                () = &mut stop, if !shutting_down => {
                    shutting_down = true;
                    continue;
                }
                () = &mut timer, if deadline.is_some() && !expired => {
                    expired = true;
                    continue;
                }
                filled = r.fill_buf() => {
                    if filled?.is_empty() {
                        if !upstream_fatal {
                            let err = PgError::fatal(
                                code::CONNECTION_FAILURE,
                                "the connection to the upstream database was lost",
                            );
                            crate::session::send_error(w, &err).await?;
                        }
                        w.flush().await?;
                        return Ok(false);
                    }
                }
            }
        }
        // As on the client side: the whole messages at the front of the
        // buffer that pass as sent leave in one write.
        if carried.is_none() {
            let run = passing_upstream_run(
                r.buffer(),
                &mut shaper,
                &mut carried,
                &mut cycle,
                pending,
                progress,
                shown.fields,
            );
            if run > 0 {
                pass_run(r, w, run).await?;
                continue;
            }
        }
        let header = match read_header(r, MAX_STREAMED_LEN).await {
            Ok(Some(h)) => h,
            Ok(None) | Err(WireError::Eof) => continue,
            Err(WireError::Io(e)) => return Err(e),
            Err(e) => {
                tracing::warn!("upstream sent a bad message: {e}");
                let err = PgError::fatal(code::CONNECTION_FAILURE, "upstream protocol error");
                return crate::session::send_error(w, &err).await.map(|()| false);
            }
        };
        let verdict = carried
            .take()
            .unwrap_or_else(|| shaper.answer(header.tag, &progress.expectations));
        match header.tag {
            b'S' | b'E' => {
                let body = match read_body(r, header.body_len).await {
                    Ok(b) => b,
                    Err(WireError::Io(e)) => return Err(e),
                    Err(_) => continue,
                };
                out.clear();
                if header.tag == b'S' {
                    rewrite_parameter_status(&body, shown.login, &mut out);
                } else {
                    upstream_fatal |= is_fatal(&body);
                    substitute_error(&body, cycle, pending, shown.fields, &mut out);
                }
                w.write_all(&out).await?;
            }
            b'N' if shown.fields == UpstreamFields::Scrubbed => {
                let body = match read_body(r, header.body_len).await {
                    Ok(b) => b,
                    Err(WireError::Io(e)) => return Err(e),
                    Err(_) => continue,
                };
                out.clear();
                // A notice is no answer the client waits for: one that
                // cannot be read is dropped rather than guessed at.
                if scrub_fields(b'N', &body, &mut out).is_none() {
                    tracing::warn!("dropped a malformed NoticeResponse from the upstream");
                }
                w.write_all(&out).await?;
            }
            b'Z' => {
                let body = match read_body(r, header.body_len).await {
                    Ok(b) => b,
                    Err(WireError::Io(e)) => return Err(e),
                    Err(_) => continue,
                };
                if ready_for_query(&body, &mut cycle, pending, progress) {
                    w.write_all(&header.to_bytes()).await?;
                    w.write_all(&body).await?;
                }
            }
            _ => match verdict {
                Verdict::Pass => {
                    w.write_all(&header.to_bytes()).await?;
                    copy_or_eof(r, w, header.body_len).await?;
                }
                Verdict::Drop => skip_or_eof(r, header.body_len).await?,
                Verdict::NoData => {
                    skip_or_eof(r, header.body_len).await?;
                    out.clear();
                    backend::put_message(&mut out, b'n', |_| {});
                    w.write_all(&out).await?;
                }
                Verdict::Retag(shape) => {
                    let body = match read_body(r, header.body_len).await {
                        Ok(b) => b,
                        Err(WireError::Io(e)) => return Err(e),
                        Err(_) => continue,
                    };
                    let tag = body.strip_suffix(&[0]).unwrap_or(&body);
                    out.clear();
                    match shaping::retag(tag, shape) {
                        Some(shown) => backend::put_message(&mut out, b'C', |b| {
                            b.put_slice(&shown);
                            b.put_u8(0);
                        }),
                        None => {
                            tracing::warn!(
                                "left the unexpected tag {:?} of a reshaped result as sent",
                                String::from_utf8_lossy(tag)
                            );
                            backend::put_message(&mut out, b'C', |b| b.put_slice(&body));
                        }
                    }
                    w.write_all(&out).await?;
                }
            },
        }
        if r.buffer().is_empty() {
            w.flush().await?;
        }
    }
}

/// The length of the whole upstream messages at the front of `buf` that
/// reach the client as sent, after the bookkeeping of the
/// message-by-message path: the shaper's verdict (Pass) and, for
/// ReadyForQuery, [`ready_for_query`]. Stops before ParameterStatus,
/// ErrorResponse and (for policy-bound sessions) NoticeResponse without
/// asking the shaper, and at a message with another verdict or pgward's own
/// ReadyForQuery after asking it (the verdict goes to `carried`).
#[allow(clippy::too_many_arguments)]
fn passing_upstream_run(
    buf: &[u8],
    shaper: &mut Shaper,
    carried: &mut Option<Verdict>,
    cycle: &mut u64,
    pending: &PendingQueue,
    progress: &Progress,
    fields: UpstreamFields,
) -> usize {
    let mut at = 0;
    while let Some((tag, len)) = whole_message(&buf[at..]) {
        match tag {
            b'S' | b'E' => break,
            b'N' if fields == UpstreamFields::Scrubbed => break,
            _ => {}
        }
        let verdict = shaper.answer(tag, &progress.expectations);
        let own_sync = tag == b'Z' && progress.own_sync.load(Ordering::Acquire) == *cycle + 1;
        if verdict != Verdict::Pass || own_sync {
            *carried = Some(verdict);
            break;
        }
        if tag == b'Z' {
            ready_for_query(&buf[at + HEADER_LEN..at + len], cycle, pending, progress);
        }
        at += len;
    }
    at
}

/// The bookkeeping of a ReadyForQuery with `body`: the refusals of the
/// cycle it ends are settled, the cycle advances, its transaction status
/// is kept. Whether the client sees it (not for a Sync pgward sent itself).
fn ready_for_query(
    body: &[u8],
    cycle: &mut u64,
    pending: &PendingQueue,
    progress: &Progress,
) -> bool {
    {
        let mut p = lock(pending);
        while p.front().is_some_and(|e| e.cycle <= *cycle) {
            p.pop_front();
        }
    }
    *cycle += 1;
    if let Some(&status) = body.first() {
        progress.status.store(status, Ordering::Release);
    }
    progress.received.store(*cycle, Ordering::Release);
    progress.own_sync.load(Ordering::Acquire) != *cycle
}

/// Writes the `run` bytes at the front of `r`'s buffer (whole messages a
/// fast-path scan let through) and consumes them; flushes when nothing more
/// is buffered. When they are all that is buffered on either side, the
/// bytes go from the read buffer to the socket without a copy into the
/// write buffer.
async fn pass_run<R, W>(
    r: &mut BufReader<R>,
    w: &mut BufWriter<W>,
    run: usize,
) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let bytes = &r.buffer()[..run];
    if run == r.buffer().len() && w.buffer().is_empty() {
        let written = w.get_mut().write(bytes).await?;
        // The rest, or the error of a closed socket (nothing written); the
        // flush also sends what a TLS stream kept back.
        w.write_all(&bytes[written..]).await?;
        w.flush().await?;
        r.consume(run);
        return Ok(());
    }
    w.write_all(bytes).await?;
    r.consume(run);
    if r.buffer().is_empty() {
        w.flush().await?;
    }
    Ok(())
}

async fn copy_or_eof<R, W>(r: &mut BufReader<R>, w: &mut W, len: usize) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    match copy_body(r, w, len).await {
        Ok(()) => Ok(()),
        Err(WireError::Io(e)) => Err(e),
        Err(_) => Err(std::io::ErrorKind::UnexpectedEof.into()),
    }
}

fn rewrite_parameter_status(body: &[u8], login: &str, out: &mut BytesMut) {
    match backend::decode_parameter_status(body) {
        Some((name, value)) => {
            let name = String::from_utf8_lossy(name);
            let value = String::from_utf8_lossy(value);
            let shown = crate::session::client_parameter(&name, &value, login);
            backend::parameter_status(out, &name, shown);
        }
        None => tracing::warn!("dropped a malformed ParameterStatus from the upstream"),
    }
}

fn is_fatal(body: &[u8]) -> bool {
    backend::decode_fields(body).is_some_and(|fields| {
        fields
            .iter()
            .any(|(k, v)| *k == b'V' && (*v == b"FATAL" || *v == b"PANIC"))
    })
}

/// Replaces the upstream's answer to a poison with pgward's own error (as
/// pgward wrote it, detail included); passes any other error on, unchanged
/// or scrubbed to [`KEPT_FIELDS`] as `fields` says.
fn substitute_error(
    body: &[u8],
    cycle: u64,
    pending: &PendingQueue,
    fields: UpstreamFields,
    out: &mut BytesMut,
) {
    let decoded = backend::decode_fields(body);
    let poisoned = decoded.as_ref().and_then(|fields| {
        let is_missing_statement = fields.iter().any(|(k, v)| *k == b'C' && *v == b"26000");
        let message = fields.iter().find(|(k, _)| *k == b'M').map(|(_, v)| *v)?;
        if !is_missing_statement {
            return None;
        }
        let mut p = lock(pending);
        let at = p.iter().position(|e| {
            e.cycle == cycle
                && message
                    .windows(e.name.len())
                    .any(|w| w == e.name.as_bytes())
        })?;
        p.remove(at)
    });
    match (poisoned, fields) {
        (Some(entry), _) => backend::error_response(out, &entry.error),
        (None, UpstreamFields::AsSent) => backend::put_message(out, b'E', |b| b.put_slice(body)),
        (None, UpstreamFields::Scrubbed) => {
            if scrub_fields(b'E', body, out).is_none() {
                tracing::warn!("replaced a malformed ErrorResponse from the upstream");
                let err = PgError::error(
                    INTERNAL_ERROR,
                    "the upstream database sent an error pgward cannot read",
                );
                backend::error_response(out, &err);
            }
        }
    }
}

/// Writes an ErrorResponse or NoticeResponse (`tag`) with the fields of
/// `body` that are in [`KEPT_FIELDS`], in the upstream's order. `None`,
/// with nothing written, when the body is malformed or lacks a severity,
/// SQLSTATE or message (PostgreSQL always sends all three).
fn scrub_fields(tag: u8, body: &[u8], out: &mut BytesMut) -> Option<()> {
    let fields = backend::decode_fields(body)?;
    for required in [b'S', b'C', b'M'] {
        if !fields.iter().any(|(k, _)| *k == required) {
            return None;
        }
    }
    backend::put_message(out, tag, |b| {
        for (kind, value) in fields.iter().filter(|(k, _)| KEPT_FIELDS.contains(k)) {
            b.put_u8(*kind);
            b.put_slice(value);
            b.put_u8(0);
        }
        b.put_u8(0);
    });
    Some(())
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod stream_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::HEADER_LEN;

    fn message(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        backend::put_message(&mut out, tag, |b| b.put_slice(body));
        out.to_vec()
    }

    /// Lets every text pass as sent but those starting with `SLOW`, and
    /// keeps those it let pass.
    #[derive(Default)]
    struct Audited(Vec<String>);

    impl Secure for Audited {
        async fn secure_typed(
            &mut self,
            _sql: &[u8],
            _origin: Origin,
            _parameter_types: &[u32],
        ) -> Result<Forward, PgError> {
            Ok(Forward::AsSent)
        }

        fn shapes(&self) -> &[(usize, Shape)] {
            &[]
        }

        fn passes_as_sent(&mut self, sql: &str) -> bool {
            let passes = !sql.starts_with("SLOW");
            if passes {
                self.0.push(sql.to_owned());
            }
            passes
        }
    }

    #[test]
    fn client_run_stops_at_what_the_hook_or_the_slow_path_reads() {
        let progress = Progress::default();
        let mut hook = Audited::default();
        let (mut cycle, mut statement_message) = (0, 0);
        let mut run = |buf: &[u8], cycle: &mut u64, statement_message: &mut u64| {
            passing_client_run(buf, &mut hook, 1024, (cycle, statement_message), &progress)
        };
        let bind = message(b'B', b"\0\0\0\0\0\0\0\0");
        let execute = message(b'E', b"\0\0\0\0\0");
        let sync = message(b'S', b"");
        let query = message(b'Q', b"SLOW 1\0");
        let pipeline = [&bind[..], &execute, &sync, &bind, &query, &sync].concat();
        // Bind, Execute, Sync, Bind: the Query is the hook's.
        assert_eq!(
            run(&pipeline, &mut cycle, &mut statement_message),
            2 * bind.len() + execute.len() + sync.len()
        );
        assert_eq!((cycle, statement_message), (1, 1));
        assert_eq!(progress.sent.load(Ordering::Acquire), 1);
        assert!(progress.unsynced.load(Ordering::Acquire));
        // A cut-off message, and a bad length, are left to read_header.
        assert_eq!(run(&sync[..3], &mut cycle, &mut statement_message), 0);
        let bad = [b'S', 0, 0, 0, 2];
        assert_eq!(run(&bad, &mut cycle, &mut statement_message), 0);
        // Terminate is never passed on.
        let terminate = message(b'X', b"");
        assert_eq!(run(&terminate, &mut cycle, &mut statement_message), 0);
        // Texts that are malformed, not UTF-8 or too long are left to the
        // slow path, which refuses them, without asking the hook.
        let long = format!("SELECT '{}'\0", "x".repeat(1024));
        for text in [&b"SELECT 1"[..], b"SELECT '\xff'\0", long.as_bytes()] {
            assert_eq!(
                run(&message(b'Q', text), &mut cycle, &mut statement_message),
                0
            );
        }
        assert!(hook.0.is_empty());
        assert_eq!(progress.sent.load(Ordering::Acquire), 1);
    }

    #[test]
    fn client_run_passes_the_texts_the_hook_lets_pass_as_sent() {
        let progress = Progress::default();
        let mut hook = Audited::default();
        let (mut cycle, mut statement_message) = (0, 0);
        let parse = message(b'P', b"s1\0SELECT $1\0\0\x01\0\0\0\x17");
        let bind = message(b'B', b"\0s1\0\0\0\0\0\0\0");
        let execute = message(b'E', b"\0\0\0\0\0");
        let sync = message(b'S', b"");
        let query = message(b'Q', b"SELECT 2\0");
        let pipeline = [&parse[..], &bind, &execute, &sync, &query, &parse].concat();
        let run = passing_client_run(
            &pipeline,
            &mut hook,
            1024,
            (&mut cycle, &mut statement_message),
            &progress,
        );
        assert_eq!(run, pipeline.len());
        assert_eq!(hook.0, ["SELECT $1", "SELECT 2", "SELECT $1"]);
        // Two cycles sent (Sync, Query); the last Parse opens a third.
        assert_eq!((cycle, statement_message), (2, 1));
        assert_eq!(progress.sent.load(Ordering::Acquire), 2);
        assert!(progress.unsynced.load(Ordering::Acquire));
    }

    #[test]
    fn upstream_run_settles_ready_for_query_and_stops_at_errors() {
        let pending: PendingQueue = Arc::default();
        lock(&pending).push_back(Pending {
            cycle: 0,
            name: "pgward_refused_0".into(),
            error: PgError::error("42501", "permission denied for table t"),
        });
        let progress = Progress::default();
        let mut shaper = Shaper::default();
        let mut carried = None;
        let mut cycle = 0;
        let bind_complete = message(b'2', b"");
        let row = message(b'D', b"\0\x01\0\0\0\x01x");
        let complete = message(b'C', b"SELECT 1\0");
        let ready = message(b'Z', b"T");
        let error = message(b'E', b"SERROR\0C22012\0Mdivision by zero\0\0");
        let answers = [&bind_complete[..], &row, &complete, &ready, &error, &ready].concat();
        let run = passing_upstream_run(
            &answers,
            &mut shaper,
            &mut carried,
            &mut cycle,
            &pending,
            &progress,
            UpstreamFields::Scrubbed,
        );
        assert_eq!(
            run,
            bind_complete.len() + row.len() + complete.len() + ready.len()
        );
        assert_eq!(cycle, 1);
        assert_eq!(progress.received.load(Ordering::Acquire), 1);
        assert_eq!(progress.status.load(Ordering::Acquire), b'T');
        assert!(
            lock(&pending).is_empty(),
            "the cycle's refusals are settled"
        );
        // The error goes to the slow path without a verdict taken for it.
        assert_eq!(carried, None);
        // pgward's own Sync: its ReadyForQuery is not the client's.
        progress.own_sync.store(2, Ordering::Release);
        let run = passing_upstream_run(
            &ready,
            &mut shaper,
            &mut carried,
            &mut cycle,
            &pending,
            &progress,
            UpstreamFields::Scrubbed,
        );
        assert_eq!(run, 0);
        assert_eq!(carried, Some(Verdict::Pass));
        assert_eq!(cycle, 1, "left to the slow path");
    }

    #[test]
    fn poison_error_is_substituted_only_in_its_cycle() {
        let pending: PendingQueue = Arc::default();
        lock(&pending).push_back(Pending {
            cycle: 2,
            name: "pgward_refused_00000000000000ab".into(),
            error: PgError::error("42501", "permission denied for table t"),
        });
        let upstream_body =
            b"SERROR\0VERROR\0C26000\0Mprepared statement \"pgward_refused_00000000000000ab\" does not exist\0\0";
        let mut out = BytesMut::new();
        substitute_error(upstream_body, 1, &pending, UpstreamFields::AsSent, &mut out);
        assert_eq!(
            &out[HEADER_LEN..],
            &upstream_body[..],
            "wrong cycle: unchanged"
        );
        out.clear();
        substitute_error(upstream_body, 2, &pending, UpstreamFields::AsSent, &mut out);
        let fields = backend::decode_fields(&out[HEADER_LEN..]).unwrap();
        assert!(fields.contains(&(b'C', &b"42501"[..])));
        assert!(lock(&pending).is_empty());
    }

    #[test]
    fn other_errors_pass_unchanged() {
        let pending: PendingQueue = Arc::default();
        let body = b"SERROR\0VERROR\0C42P01\0Mrelation \"x\" does not exist\0\0";
        let mut out = BytesMut::new();
        substitute_error(body, 0, &pending, UpstreamFields::AsSent, &mut out);
        assert_eq!(out[0], b'E');
        assert_eq!(&out[HEADER_LEN..], &body[..]);
    }

    /// An ErrorResponse as PostgreSQL 15 sends it for a CHECK violation
    /// raised inside a function, with every field type it can carry.
    const CHECK_FAILURE: &[u8] = b"SERROR\0VERROR\0C23514\0\
        Mnew row for relation \"orders\" violates check constraint \"positive\"\0\
        DFailing row contains (7, 42, 18.50, secret margin).\0\
        HCheck the amount.\0P15\0p3\0qUPDATE orders SET amount = -1\0\
        WPL/pgSQL function f() line 3 at SQL statement\0spublic\0torders\0\
        camount\0dnumeric\0npositive\0Fexecmain.c\0L2026\0RExecConstraints\0\0";

    fn kinds(message: &[u8]) -> Vec<u8> {
        backend::decode_fields(&message[HEADER_LEN..])
            .unwrap()
            .iter()
            .map(|(k, _)| *k)
            .collect()
    }

    #[test]
    fn policy_bound_errors_keep_only_severity_code_message_and_hint() {
        let pending: PendingQueue = Arc::default();
        let mut out = BytesMut::new();
        substitute_error(
            CHECK_FAILURE,
            0,
            &pending,
            UpstreamFields::Scrubbed,
            &mut out,
        );
        assert_eq!(out[0], b'E');
        assert_eq!(kinds(&out), b"SVCMH");
        let fields = backend::decode_fields(&out[HEADER_LEN..]).unwrap();
        assert!(fields.contains(&(b'C', &b"23514"[..])));
        assert!(fields.contains(&(
            b'M',
            &b"new row for relation \"orders\" violates check constraint \"positive\""[..]
        )));
        assert!(fields.contains(&(b'H', &b"Check the amount."[..])));
        assert!(!out.windows(6).any(|w| w == b"secret"));
        let declared = i32::from_be_bytes(out[1..5].try_into().unwrap());
        assert_eq!(declared as usize, out.len() - 1, "length re-computed");
    }

    #[test]
    fn bypass_errors_keep_every_field() {
        let pending: PendingQueue = Arc::default();
        let mut out = BytesMut::new();
        substitute_error(CHECK_FAILURE, 0, &pending, UpstreamFields::AsSent, &mut out);
        assert_eq!(&out[HEADER_LEN..], CHECK_FAILURE);
        assert_eq!(kinds(&out), b"SVCMDHPpqWstcdnFLR");
    }

    #[test]
    fn pgwards_own_errors_keep_their_detail_when_scrubbing() {
        let pending: PendingQueue = Arc::default();
        lock(&pending).push_back(Pending {
            cycle: 0,
            name: "pgward_refused_00000000000000cd".into(),
            error: PgError::error("42501", "permission denied for column margin")
                .with_detail("pgward detail")
                .with_hint("pgward hint"),
        });
        let body = b"SERROR\0VERROR\0C26000\0Mprepared statement \"pgward_refused_00000000000000cd\" does not exist\0\0";
        let mut out = BytesMut::new();
        substitute_error(body, 0, &pending, UpstreamFields::Scrubbed, &mut out);
        let fields = backend::decode_fields(&out[HEADER_LEN..]).unwrap();
        assert!(fields.contains(&(b'C', &b"42501"[..])));
        assert!(fields.contains(&(b'D', &b"pgward detail"[..])));
        assert!(fields.contains(&(b'H', &b"pgward hint"[..])));
    }

    #[test]
    fn notices_are_scrubbed_and_keep_their_tag() {
        let body = b"SNOTICE\0VNOTICE\0C00000\0Mchecked\0Drow (7, secret)\0\
            WPL/pgSQL function f() line 2 at RAISE\0Fpl_exec.c\0L3911\0Rexec_stmt_raise\0\0";
        let mut out = BytesMut::new();
        assert!(scrub_fields(b'N', body, &mut out).is_some());
        assert_eq!(out[0], b'N');
        assert_eq!(kinds(&out), b"SVCM");
    }

    #[test]
    fn malformed_bodies_never_pass_and_never_panic() {
        let pending: PendingQueue = Arc::default();
        let malformed: &[&[u8]] = &[
            b"",
            b"\0",
            b"SERROR",
            b"SERROR\0",
            b"SERROR\0C22012\0Mdivision by zero\0",
            b"SERROR\0C22012\0Mdivision by zero\0\0trailing",
            b"SERROR\0Mno code\0Dsecret\0\0",
            b"C22012\0Mno severity\0\0",
            b"SERROR\0C22012\0Dno message secret\0\0",
        ];
        for body in malformed {
            let mut out = BytesMut::new();
            assert!(scrub_fields(b'N', body, &mut out).is_none(), "{body:?}");
            assert!(out.is_empty(), "a malformed notice writes nothing");
            substitute_error(body, 0, &pending, UpstreamFields::Scrubbed, &mut out);
            let fields = backend::decode_fields(&out[HEADER_LEN..]).unwrap();
            assert!(
                fields.contains(&(b'C', INTERNAL_ERROR.as_bytes())),
                "{body:?}"
            );
            assert!(!out.windows(6).any(|w| w == b"secret"));
        }
        // Every prefix of a real error is malformed or the whole.
        for end in 0..CHECK_FAILURE.len() {
            let mut out = BytesMut::new();
            assert!(scrub_fields(b'E', &CHECK_FAILURE[..end], &mut out).is_none());
        }
    }

    #[test]
    fn service_identity_is_hidden() {
        let mut out = BytesMut::new();
        rewrite_parameter_status(b"is_superuser\0on\0", "alice", &mut out);
        assert_eq!(
            backend::decode_parameter_status(&out[HEADER_LEN..]),
            Some((&b"is_superuser"[..], &b"off"[..]))
        );
        out.clear();
        rewrite_parameter_status(
            b"session_authorization\0pgward_service\0",
            "alice",
            &mut out,
        );
        assert_eq!(
            backend::decode_parameter_status(&out[HEADER_LEN..]),
            Some((&b"session_authorization"[..], &b"alice"[..]))
        );
    }
}
