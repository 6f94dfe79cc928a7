//! A bounded pool of upstream connections in session mode: one connection
//! serves one client session at a time.
//!
//! A connection is opened with the pinned settings as startup parameters
//! (UTF-8, standard_conforming_strings on), so that `DISCARD ALL` brings it
//! back to them. At checkout the client's own startup settings and
//! `application_name = pgward:<login>` are applied; at check-in an open
//! transaction is rolled back and `DISCARD ALL` drops everything the session
//! left behind (settings, prepared statements, portals, temp tables,
//! LISTENs). A connection that fails any of this is dropped, never reused.
//!
//! Must never: hand a client a connection another session left in a
//! transaction, with its settings, or with its prepared statements.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use thiserror::Error;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::UpstreamConfig;
use crate::net::Stream;
use crate::upstream::connect::{self, UpstreamConn, UpstreamError};

/// Startup parameters of every pooled connection; `DISCARD ALL` restores them.
const PINNED: &[(&str, &str)] = &[
    ("client_encoding", "UTF8"),
    ("standard_conforming_strings", "on"),
    ("application_name", "pgward"),
];

#[derive(Debug, Error)]
pub enum PoolError {
    #[error("no upstream connection became free within {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The client's own startup setting was refused by the database.
    #[error("{message}")]
    Setting { code: String, message: String },
}

struct Idle {
    conn: UpstreamConn,
    since: Instant,
}

struct Inner {
    cfg: UpstreamConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    permits: Arc<Semaphore>,
    /// Idle connections by the session thread they are registered with.
    idle: Vec<Mutex<Vec<Idle>>>,
}

/// The upstream pool; cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// A connection checked out for one client session. Give it back with
/// [`Pool::checkin`] when it is clean, or drop it.
pub struct Checkout {
    pub conn: UpstreamConn,
    /// ParameterStatus values as the session should see them at start.
    pub params: Vec<(String, String)>,
    pub slot: Slot,
}

/// A taken place in the pool; the place frees when this drops.
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Pool {
    /// A pool for sessions on `workers` session threads.
    pub fn new(
        cfg: UpstreamConfig,
        tls: Option<Arc<rustls::ClientConfig>>,
        workers: usize,
    ) -> Pool {
        let permits = Arc::new(Semaphore::new(cfg.pool_size));
        Pool {
            inner: Arc::new(Inner {
                cfg,
                tls,
                permits,
                idle: (0..workers.max(1)).map(|_| Mutex::default()).collect(),
            }),
        }
    }

    /// Idle connections right now (for tests and metrics).
    pub fn idle_count(&self) -> usize {
        (0..self.inner.idle.len()).map(|i| self.idle(i).len()).sum()
    }

    /// The idle list of session thread `worker` (any index: wraps around).
    fn idle(&self, worker: usize) -> std::sync::MutexGuard<'_, Vec<Idle>> {
        self.inner.idle[worker % self.inner.idle.len()]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits for a free slot (up to `pool_timeout`), then hands out an idle
    /// connection or opens one, and applies the session's settings.
    pub async fn checkout(
        &self,
        login: &str,
        settings: &[(String, String)],
    ) -> Result<Checkout, PoolError> {
        let cfg = &self.inner.cfg;
        let permit =
            tokio::time::timeout(cfg.pool_timeout, self.inner.permits.clone().acquire_owned())
                .await
                .map_err(|_| PoolError::Timeout(cfg.pool_timeout))?
                .map_err(|_| PoolError::Timeout(cfg.pool_timeout))?;

        let setup = session_setup(login, settings);
        let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
        loop {
            let (mut conn, pooled) = match self.take_idle() {
                Some(c) => (c, true),
                None => (self.open().await?, false),
            };
            match connect::exchange(&mut conn.stream, &setup).await {
                Ok(ex) if ex.status == b'I' => {
                    let params = merge(&conn.params, &ex.params);
                    let checkout = Checkout {
                        conn,
                        params,
                        slot: Slot(permit),
                    };
                    if let Some((code, message)) = ex.error {
                        self.give_back(checkout.conn, checkout.slot, b'I');
                        return Err(PoolError::Setting { code, message });
                    }
                    return Ok(checkout);
                }
                // A pooled connection may have died while idle (the database
                // restarted): open a fresh one instead.
                Ok(_) | Err(_) if pooled => continue,
                Ok(_) => {
                    return Err(PoolError::Upstream(UpstreamError::Protocol(
                        "session set-up left a transaction open".into(),
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// An idle connection of this session thread, else one of another
    /// thread's (a plain TCP one is moved to this thread's runtime; a TLS
    /// one cannot be taken apart and keeps being served by its own).
    fn take_idle(&self) -> Option<UpstreamConn> {
        let max_idle = self.inner.cfg.idle_timeout;
        let here = crate::workers::current();
        let lists = self.inner.idle.len();
        for k in 0..lists {
            let taken = {
                let mut idle = self.idle(here + k);
                idle.retain(|c| c.since.elapsed() < max_idle);
                idle.pop()
            };
            let Some(Idle { conn, .. }) = taken else {
                continue;
            };
            if k == 0 {
                return Some(conn);
            }
            match rehome(conn, here) {
                Ok(conn) => return Some(conn),
                Err(e) => tracing::debug!("idle upstream connection dropped on the move: {e}"),
            }
        }
        None
    }

    async fn open(&self) -> Result<UpstreamConn, UpstreamError> {
        let pinned: Vec<(String, String)> = PINNED
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        connect::connect(&self.inner.cfg, self.inner.tls.as_ref(), &pinned).await
    }

    /// Returns a connection the session left at a message boundary, with
    /// `status` from its last ReadyForQuery. It is reset in the background
    /// and pooled again only if the reset succeeds; its slot stays taken
    /// until then.
    pub fn give_back(&self, conn: UpstreamConn, slot: Slot, status: u8) {
        let pool = self.clone();
        tokio::spawn(async move {
            pool.reset(conn, status).await;
            drop(slot);
        });
    }

    async fn reset(&self, mut conn: UpstreamConn, status: u8) {
        let queries: &[&str] = if status == b'I' {
            &["DISCARD ALL"]
        } else {
            &["ROLLBACK", "DISCARD ALL"]
        };
        let done = tokio::time::timeout(
            Duration::from_secs(10),
            connect::exchange(&mut conn.stream, queries),
        )
        .await;
        match done {
            Ok(Ok(ex)) if ex.error.is_none() && ex.status == b'I' => {
                self.idle(conn.home).push(Idle {
                    conn,
                    since: Instant::now(),
                });
            }
            other => tracing::debug!("upstream connection dropped after reset: {other:?}"),
        }
    }

    /// Closes idle connections past `idle_timeout`; run periodically.
    pub fn reap(&self) {
        let max_idle = self.inner.cfg.idle_timeout;
        for worker in 0..self.inner.idle.len() {
            self.idle(worker).retain(|c| c.since.elapsed() < max_idle);
        }
    }
}

/// Registers a plain TCP connection with the runtime of session thread
/// `here` (the caller's); a TLS one is left where it is.
fn rehome(mut conn: UpstreamConn, here: usize) -> std::io::Result<UpstreamConn> {
    if let Stream::Plain(tcp) = conn.stream {
        conn.stream = Stream::Plain(tokio::net::TcpStream::from_std(tcp.into_std()?)?);
        conn.home = here;
    }
    Ok(conn)
}

/// The SET statements that give a fresh or reset connection a session's
/// settings. Names come from the settings allowlist; values are quoted.
fn session_setup(login: &str, settings: &[(String, String)]) -> Vec<String> {
    let mut sql = format!(
        "SET application_name = {}",
        quote_literal(&format!("pgward:{login}"))
    );
    for (name, value) in settings {
        if name.eq_ignore_ascii_case("application_name")
            || name.eq_ignore_ascii_case("client_encoding")
            || name.eq_ignore_ascii_case("search_path")
        {
            continue;
        }
        sql.push_str(&format!(
            "; SET {} = {}",
            quote_ident(name),
            quote_literal(value)
        ));
    }
    vec![sql]
}

/// Startup parameters updated by the set-up's ParameterStatus messages.
fn merge(base: &[(String, String)], updates: &[(String, String)]) -> Vec<(String, String)> {
    let mut out = base.to_vec();
    for (name, value) in updates {
        match out.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = value.clone(),
            None => out.push((name.clone(), value.clone())),
        }
    }
    out
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("idle", &self.idle_count())
            .field("free", &self.inner.permits.available_permits())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setup_quotes_values_and_skips_pinned_names() {
        let s = session_setup(
            "o'brien",
            &[
                ("DateStyle".into(), "ISO, DMY".into()),
                ("client_encoding".into(), "UTF8".into()),
                ("application_name".into(), "psql".into()),
                ("TimeZone".into(), "x'; DROP TABLE t; --".into()),
            ],
        );
        assert_eq!(
            s,
            vec![
                "SET application_name = 'pgward:o''brien'; SET \"DateStyle\" = 'ISO, DMY'; \
                 SET \"TimeZone\" = 'x''; DROP TABLE t; --'"
                    .to_string()
            ]
        );
    }

    #[test]
    fn updates_replace_startup_values() {
        let base = vec![("DateStyle".into(), "ISO, MDY".into())];
        let merged = merge(
            &base,
            &[
                ("DateStyle".into(), "ISO, DMY".into()),
                ("application_name".into(), "pgward:a".into()),
            ],
        );
        assert_eq!(
            merged,
            vec![
                ("DateStyle".to_string(), "ISO, DMY".to_string()),
                ("application_name".to_string(), "pgward:a".to_string())
            ]
        );
    }
}
