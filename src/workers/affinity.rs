//! Session threads pinned one to a CPU (`server.pin_threads`).
//!
//! A session thread sleeps in `epoll_wait` between messages and is woken by
//! whichever task wrote to one of its sockets. Unpinned, the scheduler often
//! moves it to the waker's CPU: with one busy client, up to two moves per
//! transaction, each costing the thread its warm cache, and 15–25 % fewer
//! transactions in the runs where that happens (`benches/pgbench.sh`). A
//! pinned thread never moves. Threads started from a pinned thread
//! (tokio's blocking pool) get the process's CPUs back.

use std::sync::OnceLock;

use rustix::thread::{CpuSet, sched_getaffinity, sched_setaffinity};

/// The CPUs the process could run on before any thread was pinned.
static PROCESS: OnceLock<CpuSet> = OnceLock::new();

/// The CPUs for `count` session threads, thread `i` on the `i`-th: the
/// CPUs the calling thread may run on, when there are at least `count` of
/// them. Remembers them for [`unpin`].
pub fn plan(count: usize) -> std::io::Result<Option<Vec<usize>>> {
    let allowed = sched_getaffinity(None)?;
    let allowed = *PROCESS.get_or_init(|| allowed);
    let cpus: Vec<usize> = (0..CpuSet::MAX_CPU)
        .filter(|&cpu| allowed.is_set(cpu))
        .collect();
    Ok(cpus_for(count, cpus))
}

/// The first `count` of `cpus`, when there are that many and more than one
/// thread to place.
fn cpus_for(count: usize, mut cpus: Vec<usize>) -> Option<Vec<usize>> {
    if count < 2 || cpus.len() < count {
        return None;
    }
    cpus.truncate(count);
    Some(cpus)
}

/// Pins the calling thread, session thread `thread`, to `cpu`; whether it
/// could. A thread that cannot be pinned runs unpinned (a warning says so).
pub fn pin(thread: usize, cpu: usize) -> bool {
    let mut set = CpuSet::new();
    set.set(cpu);
    match sched_setaffinity(None, &set) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("cannot pin session thread {thread} to CPU {cpu}: {e}");
            false
        }
    }
}

/// Gives the calling thread the CPUs the process had before [`plan`]; does
/// nothing before it. For threads that a pinned thread starts.
pub fn unpin() {
    if let Some(set) = PROCESS.get() {
        // A thread that cannot be unpinned still runs, on one CPU.
        if let Err(e) = sched_setaffinity(None, set) {
            tracing::debug!("cannot unpin a thread: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_cpu_per_thread_when_there_are_enough() {
        assert_eq!(cpus_for(2, vec![0, 3, 5]), Some(vec![0, 3]));
        assert_eq!(cpus_for(3, vec![1, 2, 4]), Some(vec![1, 2, 4]));
        assert_eq!(cpus_for(3, vec![0, 1]), None);
        assert_eq!(cpus_for(1, vec![0, 1]), None);
    }

    #[test]
    fn a_pinned_thread_runs_on_its_cpu_and_an_unpinned_one_on_all() {
        // Its own thread: the mask must not leak into other tests.
        std::thread::spawn(|| {
            let before = sched_getaffinity(None).unwrap();
            let cpus = plan(1).unwrap();
            assert_eq!(cpus, None, "one thread is never pinned");
            let first = (0..CpuSet::MAX_CPU).find(|&c| before.is_set(c)).unwrap();
            assert!(pin(0, first));
            let pinned = sched_getaffinity(None).unwrap();
            assert_eq!(pinned.count(), 1);
            assert!(pinned.is_set(first));
            assert_eq!(rustix::thread::sched_getcpu(), first);
            unpin();
            assert_eq!(sched_getaffinity(None).unwrap(), before);
        })
        .join()
        .unwrap();
    }
}
