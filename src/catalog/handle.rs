//! The current snapshot and how it is replaced: whole, never in place, at
//! most once per interval, with concurrent callers sharing one load.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::error::CatalogError;
use super::snapshot::Catalog;

/// Refreshes closer together than this return the current snapshot: an
/// unknown name may trigger one refresh before 42P01, and a client sending
/// unknown names must not turn that into a load on the upstream.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Holds the current snapshot. Readers take an `Arc<Catalog>` and keep it for
/// a whole statement, so one statement never sees two snapshots.
#[derive(Debug)]
pub struct CatalogHandle {
    current: RwLock<Arc<Catalog>>,
    /// When the last load was started; held for the length of a load, so
    /// callers arriving meanwhile wait for it and share its result.
    last_load: tokio::sync::Mutex<Instant>,
    min_interval: Duration,
}

impl CatalogHandle {
    /// Holds `catalog`, counted as just loaded.
    pub fn new(catalog: Catalog) -> CatalogHandle {
        CatalogHandle::with_min_interval(catalog, MIN_REFRESH_INTERVAL)
    }

    pub fn with_min_interval(catalog: Catalog, min_interval: Duration) -> CatalogHandle {
        CatalogHandle {
            current: RwLock::new(Arc::new(catalog)),
            last_load: tokio::sync::Mutex::new(Instant::now()),
            min_interval,
        }
    }

    /// Takes the first snapshot.
    pub async fn load(client: &Client) -> Result<CatalogHandle, CatalogError> {
        Ok(CatalogHandle::new(Catalog::load(client).await?))
    }

    pub fn current(&self) -> Arc<Catalog> {
        // The lock only guards an Arc swap; a panic elsewhere cannot leave
        // it half-written.
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Loads a new snapshot with the next generation and makes it current,
    /// unless one was loaded less than the minimum interval ago (then the
    /// current one is returned) or another caller's load finished while
    /// this one waited (then that one is returned).
    ///
    /// Cancel-safe: dropping the future leaves the current snapshot in
    /// place (a load that was started still counts against the interval).
    pub async fn refresh(&self, client: &Client) -> Result<Arc<Catalog>, CatalogError> {
        let seen = self.current().generation();
        let mut last_load = self.last_load.lock().await;
        let current = self.current();
        if current.generation() != seen || last_load.elapsed() < self.min_interval {
            return Ok(current);
        }
        *last_load = Instant::now();
        let mut fresh = Catalog::load(client).await?;
        fresh.generation = current.generation() + 1;
        let fresh = Arc::new(fresh);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&fresh);
        Ok(fresh)
    }
}
