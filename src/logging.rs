//! Where log lines go: stderr, written at once by most threads and in
//! batches by the session threads.
//!
//! A BYPASSPOLICY session logs every statement it runs (the audit trail),
//! so under load a session thread would make one `write` per statement. A
//! session thread instead collects its lines, and a log thread writes them
//! [`WAIT`] after the first of them, or as soon as they pass [`LIMIT`]
//! bytes. The session thread writes them itself with the next warning or
//! error (those are never held back) and past [`HARD_LIMIT`] bytes (when
//! the log thread cannot keep up). Lines are whole when written, so
//! threads never interleave within a line, and one thread's lines keep
//! their order.

use std::cell::Cell;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// Collected bytes past which the log thread writes at once.
const LIMIT: usize = 16 * 1024;

/// Collected bytes past which a session thread writes them itself.
const HARD_LIMIT: usize = 1024 * 1024;

/// How long a session thread's line may wait to be written.
const WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// Lines are plain text (no colours, no JSON) and sanitized by [`Stderr`].
static PLAIN: AtomicBool = AtomicBool::new(false);

/// A batch passed [`LIMIT`]: the log thread writes without waiting.
static FULL: AtomicBool = AtomicBool::new(false);

/// The lines one session thread collected. A session thread lives as long
/// as the process, so its batch does too.
#[derive(Default)]
struct Batch {
    bytes: Mutex<Vec<u8>>,
    /// Held while lines taken from `bytes` are written, so that they reach
    /// stderr in the order they were collected.
    writing: Mutex<()>,
}

impl Batch {
    fn lock(&self) -> MutexGuard<'_, Vec<u8>> {
        self.bytes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends the line `put` writes; writes at once when `urgent` or past
    /// [`HARD_LIMIT`], else has the log thread write it.
    fn append(&self, urgent: bool, put: impl FnOnce(&mut Vec<u8>)) {
        let (first, len) = {
            let mut bytes = self.lock();
            let first = bytes.is_empty();
            put(&mut bytes);
            (first, bytes.len())
        };
        if urgent || len >= HARD_LIMIT {
            self.write_out();
            return;
        }
        let full = len >= LIMIT && !FULL.swap(true, Ordering::AcqRel);
        if (first || full)
            && let Some(Some(writer)) = WRITER.get()
        {
            writer.unpark();
        }
    }

    /// Writes what the batch holds, after what is being written of it. The
    /// session thread appends meanwhile: it never waits for the write.
    fn write_out(&self) {
        let _order = self.writing.lock().unwrap_or_else(PoisonError::into_inner);
        let mut taken = std::mem::take(&mut *self.lock());
        if taken.is_empty() {
            return;
        }
        // Nowhere to report a failed write of the log itself.
        let _ = io::stderr().lock().write_all(&taken);
        taken.clear();
        // The space goes back for the next lines, unless some came.
        let mut bytes = self.lock();
        if bytes.is_empty() {
            std::mem::swap(&mut *bytes, &mut taken);
        }
    }
}

/// Every session thread's batch.
static BATCHES: Mutex<Vec<&'static Batch>> = Mutex::new(Vec::new());

/// The thread that writes the batches, unparked by a batch's first line
/// (`None`: it could not be started, and lines are written at once).
static WRITER: OnceLock<Option<std::thread::Thread>> = OnceLock::new();

thread_local! {
    static BATCH: Cell<Option<&'static Batch>> = const { Cell::new(None) };
}

/// From now on this thread's lines are collected; [`flush`] writes what
/// every thread collected.
pub fn batch_this_thread() {
    if BATCH.with(Cell::get).is_some() {
        return;
    }
    let writer = WRITER.get_or_init(|| {
        std::thread::Builder::new()
            .name("pgward-log".into())
            .spawn(|| {
                loop {
                    std::thread::park();
                    // The first line waits up to WAIT, unless a batch fills
                    // up first.
                    let until = std::time::Instant::now() + WAIT;
                    while !FULL.swap(false, Ordering::AcqRel) {
                        let left = until.saturating_duration_since(std::time::Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        std::thread::park_timeout(left);
                    }
                    flush();
                }
            })
            .ok()
            .map(|handle| handle.thread().clone())
    });
    if writer.is_none() {
        return;
    }
    let batch: &'static Batch = Box::leak(Box::default());
    BATCHES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(batch);
    BATCH.with(|b| b.set(Some(batch)));
}

/// Writes what the session threads have collected.
pub fn flush() {
    let batches = BATCHES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for batch in batches {
        batch.write_out();
    }
}

/// Writes the line `put` writes, sanitized when `sanitizing` (see
/// [`sanitize`]): collected on a session thread, else at once.
fn emit(urgent: bool, sanitizing: bool, put: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
    let line = |out: &mut Vec<u8>| {
        let start = out.len();
        put(out);
        if sanitizing && needs_escaping(&out[start..]) {
            let escaped = sanitize(&out[start..]);
            out.truncate(start);
            out.extend_from_slice(&escaped);
        }
    };
    match BATCH.try_with(Cell::get).ok().flatten() {
        Some(batch) => {
            batch.append(urgent, line);
            Ok(())
        }
        None => {
            let mut bytes = Vec::new();
            line(&mut bytes);
            io::stderr().lock().write_all(&bytes)
        }
    }
}

/// The writer `tracing` formats each line into; `urgent` for warnings and
/// errors; `sanitize`: escape terminal control characters here (see
/// [`sanitize`]).
pub struct Stderr {
    urgent: bool,
    sanitize: bool,
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        emit(self.urgent, self.sanitize, |out| out.extend_from_slice(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether a line holds a byte [`sanitize`] rewrites (the lead byte of
/// C1 controls, U+0080 to U+009F, counts; most lines hold none). Runs of
/// printable ASCII, most of a line, are passed over sixteen bytes at a
/// time.
fn needs_escaping(line: &[u8]) -> bool {
    let escaped = |b: &u8| matches!(b, 0x07 | 0x08 | 0x0c | 0x1b | 0x7f | 0xc2);
    let mut chunks = line.chunks_exact(16);
    for chunk in &mut chunks {
        let printable = chunk
            .iter()
            .fold(true, |all, b| all & (0x20..0x7f).contains(b));
        if !printable && chunk.iter().any(escaped) {
            return true;
        }
    }
    chunks.remainder().iter().any(escaped)
}

/// A plain-text line with the characters a terminal acts on written as
/// escapes, as `tracing-subscriber` writes them in field values: ESC, BEL,
/// BS, FF and DEL as `\x1b` and the like, C1 controls as `\u{9b}`. Used
/// for text lines without colours, where the line holds no escape of its
/// own; one pass over the bytes instead of the library's per-character
/// writes, which cost more than the rest of the line (a BYPASSPOLICY
/// session logs each statement's text).
fn sanitize(line: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len() + 16);
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b @ (0x07 | 0x08 | 0x0c | 0x1b | 0x7f) => {
                out.extend_from_slice(format!("\\x{b:02x}").as_bytes());
            }
            0xc2 if line.get(i + 1).is_some_and(|n| (0x80..=0x9f).contains(n)) => {
                out.extend_from_slice(format!("\\u{{{:x}}}", line[i + 1]).as_bytes());
                i += 1;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Makes a [`Stderr`] for each line.
struct MakeStderr {
    sanitize: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MakeStderr {
    type Writer = Stderr;

    fn make_writer(&'a self) -> Stderr {
        Stderr {
            urgent: true,
            sanitize: self.sanitize,
        }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Stderr {
        Stderr {
            urgent: *meta.level() <= tracing::Level::WARN,
            sanitize: self.sanitize,
        }
    }
}

/// Logs a statement of a BYPASSPOLICY session, the audit trail: at INFO,
/// target `pgward::statement::hook`, `bypass statement: <text>` with the
/// field `user`. For plain text lines pgward writes the line itself, in
/// the form the formatting layer gives it (the tests hold the two
/// together): the layer's general formatting of a line is most of what
/// forwarding a statement costs otherwise.
pub fn bypass_statement(login: &str, text: &str) {
    if !PLAIN.load(Ordering::Relaxed) {
        tracing::info!(target: "pgward::statement::hook", user = %login, "bypass statement: {text}");
        return;
    }
    // The filter is set once, with PLAIN (see `init`).
    static ENABLED: OnceLock<bool> = OnceLock::new();
    if !*ENABLED
        .get_or_init(|| tracing::enabled!(target: "pgward::statement::hook", tracing::Level::INFO))
    {
        return;
    }
    let at = std::time::SystemTime::now();
    // Nowhere to report a failed write of the log itself.
    let _ = emit(false, true, |out| put_bypass_line(at, login, text, out));
}

/// Appends the audit line of [`bypass_statement`] as the formatting layer
/// writes it for plain text, unsanitized.
fn put_bypass_line(at: std::time::SystemTime, login: &str, text: &str, out: &mut Vec<u8>) {
    out.reserve(text.len() + login.len() + 96);
    timestamp(at, out);
    out.extend_from_slice(b"  INFO pgward::statement::hook: bypass statement: ");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b" user=");
    out.extend_from_slice(login.as_bytes());
    out.push(b'\n');
}

/// `2026-11-23T23:43:35.298692Z` (UTC, microseconds), as the formatting
/// layer writes its timestamps.
fn timestamp(at: std::time::SystemTime, out: &mut Vec<u8>) {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    // Most lines fall in the second of the line before.
    let shown = match LAST_SECOND.get() {
        Some((second, shown)) if second == secs => shown,
        _ => {
            let shown = whole_seconds(secs);
            LAST_SECOND.set(Some((secs, shown)));
            shown
        }
    };
    out.extend_from_slice(&shown);
    put_decimal(u64::from(since.subsec_micros()), 6, out);
    out.push(b'Z');
}

thread_local! {
    /// The last second [`timestamp`] wrote, and how.
    static LAST_SECOND: Cell<Option<(u64, [u8; 20])>> = const { Cell::new(None) };
}

/// `2026-11-23T23:43:35.` for `secs` since the epoch (years up to 9999).
fn whole_seconds(secs: u64) -> [u8; 20] {
    let (days, in_day) = (secs / 86_400, secs % 86_400);
    // Days to a civil date (the proleptic Gregorian calendar), after
    // Howard Hinnant's `civil_from_days`.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    // By hand rather than through `write!`, which costs more than the rest
    // of a line.
    let mut shown = Vec::with_capacity(20);
    for (value, width, then) in [
        (year.min(9_999), 4, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (in_day / 3_600, 2, b':'),
        (in_day / 60 % 60, 2, b':'),
        (in_day % 60, 2, b'.'),
    ] {
        put_decimal(value, width, &mut shown);
        shown.push(then);
    }
    let mut fixed = [0; 20];
    fixed.copy_from_slice(&shown);
    fixed
}

/// `n` in decimal, zero-padded to at least `width` digits.
fn put_decimal(mut n: u64, width: usize, out: &mut Vec<u8>) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] += (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at.min(digits.len() - width)..]);
}

/// Text or JSON lines on stderr, filtered by `PGWARD_LOG` (default
/// `info`); colours only on a terminal.
pub fn init(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PGWARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = io::stderr().is_terminal();
    // Plain text lines are sanitized whole by the writer; coloured lines
    // hold escapes of their own, and JSON has its own escaping, so there
    // the library sanitizes the values.
    let ours = !json && !ansi;
    PLAIN.store(ours, Ordering::Relaxed);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_ansi_sanitization(!ours)
        .with_writer(MakeStderr { sanitize: ours });
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_pass_unchanged() {
        let line = "INFO bypass statement: SELECT 'é', E'\\t'\n".as_bytes();
        assert!(!needs_escaping(line));
        // U+00A0 shares the lead byte of the C1 controls: looked at, kept.
        let nbsp = "SELECT '\u{a0}'".as_bytes();
        assert!(needs_escaping(nbsp));
        assert_eq!(sanitize(nbsp), nbsp);
    }

    #[test]
    fn terminal_controls_are_escaped() {
        let line = "a\u{1b}[31mred\u{7}\u{8}\u{c}\u{7f}\u{9b}2J\u{85}é\n".as_bytes();
        assert!(needs_escaping(line));
        assert_eq!(
            String::from_utf8(sanitize(line)).unwrap(),
            "a\\x1b[31mred\\x07\\x08\\x0c\\x7f\\u{9b}2J\\u{85}é\n"
        );
        // A lone lead byte or one before a non-C1 character stays.
        assert_eq!(sanitize(&[0xc2, 0xa0, 0xc2]), vec![0xc2, 0xa0, 0xc2]);
    }

    #[test]
    fn timestamps_read_as_the_formatting_layer_writes_them() {
        use std::time::{Duration, UNIX_EPOCH};
        for (secs, micros, shown) in [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, 7, "2000-02-29T00:00:00.000007Z"),
            (1_795_477_415, 298_692, "2026-11-23T23:43:35.298692Z"),
            // The second just written, again.
            (1_795_477_415, 5, "2026-11-23T23:43:35.000005Z"),
            (4_107_542_399, 999_999, "2100-02-28T23:59:59.999999Z"),
        ] {
            let at = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
            let mut ours = Vec::new();
            timestamp(at, &mut ours);
            assert_eq!(String::from_utf8(ours).unwrap(), shown);
        }
    }

    /// The audit line pgward writes itself equals the formatting layer's
    /// line for the same event, but for the timestamp.
    #[test]
    fn the_audit_line_is_the_layers_line() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Captured(Arc<Mutex<Vec<u8>>>);
        impl Write for Captured {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        let (login, text) = ("o'brien", "SELECT 'a b', $1 FROM t WHERE x = 'é'");
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "pgward::statement::hook", user = %login, "bypass statement: {text}");
        });
        let layer = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let mut ours = Vec::new();
        put_bypass_line(std::time::SystemTime::now(), login, text, &mut ours);
        let ours = String::from_utf8(ours).unwrap();
        let stamp = "2026-11-23T23:43:35.298692Z".len();
        assert_eq!(&layer[stamp..], &ours[stamp..]);
        assert!(layer.as_bytes()[stamp - 1] == b'Z' && layer.as_bytes()[10] == b'T');
    }

    #[test]
    fn every_byte_to_escape_is_found_wherever_it_stands() {
        let line = b"SELECT * FROM pgbench_accounts WHERE aid = 1\tAND\n x = '\xc3\xa9'";
        assert!(!needs_escaping(line));
        for at in 0..line.len() {
            for b in [0x07, 0x08, 0x0c, 0x1b, 0x7f, 0xc2] {
                let mut with = line.to_vec();
                with[at] = b;
                assert!(needs_escaping(&with), "byte {b:#x} at {at}");
            }
        }
    }

    #[test]
    fn a_session_thread_collects_until_the_writer_writes() {
        std::thread::spawn(|| {
            batch_this_thread();
            let batch = BATCH.with(Cell::get).unwrap();
            let mut w = Stderr {
                urgent: false,
                sanitize: true,
            };
            // Held, sanitized, until the writer thread's turn (unless its
            // turn came in between).
            w.write_all(b"logging test line \x1b\n").unwrap();
            let held = batch.lock().clone();
            assert!(held.is_empty() || held.ends_with(b"logging test line \\x1b\n"));
            let started = std::time::Instant::now();
            while !batch.lock().is_empty() {
                assert!(started.elapsed() < std::time::Duration::from_secs(10));
                std::thread::sleep(WAIT);
            }
            let mut w = Stderr {
                urgent: true,
                sanitize: false,
            };
            w.write_all(b"logging test line two\n").unwrap();
            assert!(batch.lock().is_empty());
        })
        .join()
        .unwrap();
    }
}
