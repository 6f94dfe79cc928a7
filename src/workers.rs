//! Session threads: one thread per CPU, each running its own
//! single-threaded tokio runtime.
//!
//! A session lives on one thread from its first byte to its last: both
//! directions of forwarding, its timers, and its upstream socket (the pool
//! keeps idle connections per thread, see [`crate::upstream::pool`]). Wake-ups
//! then stay on the thread that polls, with no work-stealing scheduler and no
//! thread-to-thread hand-offs per message, which is most of what a proxy
//! spends per statement.
//!
//! The listener runs on thread 0 (the caller's runtime) and deals accepted
//! connections out in turn; thread 0 serves its share itself.
//!
//! With `server.pin_threads`, thread `i` runs on the `i`-th CPU only (see
//! [`affinity`]).

pub mod affinity;

use std::cell::Cell;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::session::{self, Shared};

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// The session thread running this code (0 on the listener's thread and on
/// any thread that is not a session thread).
pub fn current() -> usize {
    WORKER.with(Cell::get)
}

/// The session threads besides the caller's, and where the next accepted
/// connection goes.
pub struct Workers {
    /// Index `i` feeds thread `i + 1`.
    senders: Vec<mpsc::UnboundedSender<std::net::TcpStream>>,
    next: usize,
}

impl Workers {
    /// Starts `count - 1` threads (the caller's thread is the first of
    /// `count`), each pinned to a CPU of its own when `pin` and there are
    /// enough CPUs. They end when this is dropped, after their sessions have
    /// been given the chance to finish (graceful shutdown waits for them
    /// before dropping).
    pub fn start(count: usize, pin: bool, shared: &Arc<Shared>) -> std::io::Result<Workers> {
        let count = count.max(1);
        let cpus = if pin {
            let cpus = affinity::plan(count)?;
            if cpus.is_none() {
                tracing::info!(
                    "not pinning {count} session thread(s): fewer CPUs than threads, or one thread"
                );
            }
            cpus
        } else {
            None
        };
        let mut senders = Vec::new();
        for index in 1..count {
            let (tx, rx) = mpsc::unbounded_channel();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .on_thread_start(affinity::unpin)
                .build()?;
            let shared = shared.clone();
            let cpu = cpus.as_ref().map(|cpus| cpus[index]);
            std::thread::Builder::new()
                .name(format!("pgward-worker-{index}"))
                .spawn(move || {
                    WORKER.with(|w| w.set(index));
                    if let Some(cpu) = cpu {
                        affinity::pin(index, cpu);
                    }
                    crate::logging::batch_this_thread();
                    runtime.block_on(serve(rx, shared));
                })?;
            senders.push(tx);
        }
        // The caller's thread last: the threads above start unpinned.
        if let Some(cpus) = &cpus
            && affinity::pin(0, cpus[0])
        {
            tracing::info!("session threads pinned to CPUs {cpus:?}");
        }
        Ok(Workers { senders, next: 0 })
    }

    /// Hands an accepted connection to the next thread in turn.
    pub fn dispatch(&mut self, tcp: TcpStream, shared: &Arc<Shared>) {
        let turn = self.next % (self.senders.len() + 1);
        self.next = self.next.wrapping_add(1);
        if turn == 0 {
            tokio::spawn(session::run(tcp, shared.clone()));
            return;
        }
        // The socket is registered with this thread's reactor: move it out
        // so the receiving thread registers it with its own.
        match tcp.into_std() {
            Ok(std) => {
                if let Err(mpsc::error::SendError(std)) = self.senders[turn - 1].send(std) {
                    tracing::warn!("session thread {turn} is gone; serving the client here");
                    spawn_session(std, shared);
                }
            }
            Err(e) => tracing::warn!("cannot hand a client connection over: {e}"),
        }
    }
}

/// A session thread's loop: runs a session for each connection it is handed.
async fn serve(mut rx: mpsc::UnboundedReceiver<std::net::TcpStream>, shared: Arc<Shared>) {
    while let Some(std) = rx.recv().await {
        spawn_session(std, &shared);
    }
}

/// Registers a client connection handed over from another thread with this
/// thread's runtime and runs its session here.
fn spawn_session(std: std::net::TcpStream, shared: &Arc<Shared>) {
    match TcpStream::from_std(std) {
        Ok(tcp) => {
            tokio::spawn(session::run(tcp, shared.clone()));
        }
        Err(e) => tracing::warn!("cannot register a client connection: {e}"),
    }
}
