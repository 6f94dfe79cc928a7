//! Where log lines go: stderr, written at once by most threads and in
//! batches by the session threads.
//!
//! A BYPASSPOLICY session logs every statement it runs (the audit trail),
//! so under load a session thread would make one `write` per statement. A
//! session thread instead collects its lines and writes them in one go
//! [`WAIT`] after the first of them, as soon as they pass [`LIMIT`] bytes,
//! with the next warning or error (those are written at once, after what
//! the thread collected before them), and when the thread ends. Lines are
//! whole when written, so threads never interleave within a line.

use std::cell::RefCell;
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Collected bytes past which a session thread writes at once.
const LIMIT: usize = 16 * 1024;

/// How long a session thread's line may wait to be written.
const WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// Lines are plain text (no colours, no JSON) and sanitized by [`Stderr`].
static PLAIN: AtomicBool = AtomicBool::new(false);

#[derive(Default)]
struct Lines {
    bytes: Vec<u8>,
    /// Whether this thread collects (session threads) or writes at once.
    batched: bool,
    /// A task on this thread's runtime will write the lines.
    timer: bool,
}

impl Lines {
    fn write_out(&mut self) {
        if !self.bytes.is_empty() {
            // Nowhere to report a failed write of the log itself.
            let _ = io::stderr().lock().write_all(&self.bytes);
            self.bytes.clear();
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        self.write_out();
    }
}

thread_local! {
    static LINES: RefCell<Lines> = RefCell::default();
}

/// From now on this thread's lines are collected. Only for a thread that
/// runs a single-threaded tokio runtime (where the write is scheduled) and
/// calls [`flush`] before it ends unless the thread's end does.
pub fn batch_this_thread() {
    let _ = LINES.try_with(|l| l.borrow_mut().batched = true);
}

/// Writes this thread's lines [`WAIT`] from now, on its runtime.
fn schedule_write() -> bool {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return false;
    };
    runtime.spawn(async {
        tokio::time::sleep(WAIT).await;
        let _ = LINES.try_with(|l| {
            if let Ok(mut lines) = l.try_borrow_mut() {
                lines.timer = false;
                lines.write_out();
            }
        });
    });
    true
}

/// Writes what this thread has collected.
pub fn flush() {
    let _ = LINES.try_with(|l| {
        if let Ok(mut lines) = l.try_borrow_mut() {
            lines.write_out();
        }
    });
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
        let escaped;
        let line = if self.sanitize && needs_escaping(buf) {
            escaped = sanitize(buf);
            &escaped[..]
        } else {
            buf
        };
        let collected = LINES.try_with(|l| {
            let Ok(mut lines) = l.try_borrow_mut() else {
                return false;
            };
            if !lines.batched {
                return false;
            }
            if !lines.timer {
                if !schedule_write() {
                    return false;
                }
                lines.timer = true;
            }
            lines.bytes.extend_from_slice(line);
            if self.urgent || lines.bytes.len() >= LIMIT {
                lines.write_out();
            }
            true
        });
        if collected != Ok(true) {
            io::stderr().lock().write_all(line)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether a line holds a byte [`sanitize`] rewrites (the lead byte of
/// C1 controls, U+0080 to U+009F, counts; most lines hold none).
fn needs_escaping(line: &[u8]) -> bool {
    line.iter()
        .any(|b| matches!(b, 0x07 | 0x08 | 0x0c | 0x1b | 0x7f | 0xc2))
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
    if !tracing::enabled!(target: "pgward::statement::hook", tracing::Level::INFO) {
        return;
    }
    if !PLAIN.load(Ordering::Relaxed) {
        tracing::info!(target: "pgward::statement::hook", user = %login, "bypass statement: {text}");
        return;
    }
    let line = bypass_line(std::time::SystemTime::now(), login, text);
    let mut w = Stderr {
        urgent: false,
        sanitize: true,
    };
    // Nowhere to report a failed write of the log itself.
    let _ = w.write_all(&line);
}

/// The audit line of [`bypass_statement`] as the formatting layer writes
/// it for plain text, unsanitized.
fn bypass_line(at: std::time::SystemTime, login: &str, text: &str) -> Vec<u8> {
    let mut line = Vec::with_capacity(text.len() + login.len() + 96);
    timestamp(at, &mut line);
    line.extend_from_slice(b"  INFO pgward::statement::hook: bypass statement: ");
    line.extend_from_slice(text.as_bytes());
    line.extend_from_slice(b" user=");
    line.extend_from_slice(login.as_bytes());
    line.push(b'\n');
    line
}

/// `2026-11-23T23:43:35.298692Z` (UTC, microseconds), as the formatting
/// layer writes its timestamps.
fn timestamp(at: std::time::SystemTime, out: &mut Vec<u8>) {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
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
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        in_day / 3_600,
        in_day / 60 % 60,
        in_day % 60,
        since.subsec_micros()
    );
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
        let ours =
            String::from_utf8(bypass_line(std::time::SystemTime::now(), login, text)).unwrap();
        let stamp = "2026-11-23T23:43:35.298692Z".len();
        assert_eq!(&layer[stamp..], &ours[stamp..]);
        assert!(layer.as_bytes()[stamp - 1] == b'Z' && layer.as_bytes()[10] == b'T');
    }

    #[test]
    fn a_session_thread_collects_until_flushed() {
        std::thread::spawn(|| {
            batch_this_thread();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut w = Stderr {
                    urgent: false,
                    sanitize: true,
                };
                w.write_all(b"one \x1b\n").unwrap();
                let held = LINES.with(|l| l.borrow().bytes.clone());
                assert_eq!(held, b"one \\x1b\n");
                let mut w = Stderr {
                    urgent: true,
                    sanitize: false,
                };
                w.write_all(b"two\n").unwrap();
                assert!(LINES.with(|l| l.borrow().bytes.is_empty()));
            });
        })
        .join()
        .unwrap();
    }
}
