//! Failed-login throttling per user name and per client address
//! (`auth.lockout`). A failure delays the next refusals of that name and
//! address, and enough failures within the window lock both out for a
//! while: every login with them is then refused with the same 28P01,
//! whatever the password. Unknown names count exactly like known ones.
//! A success is never slowed and forgets the name's failures (not the
//! address's: one good account must not launder an address's guessing).
//!
//! The tables are bounded: past `MAX_ENTRIES` the oldest entries go.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::LockoutConfig;

/// Names plus addresses tracked at most.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    first: Instant,
    last: Instant,
    locked_until: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Name(String),
    Addr(String),
}

pub struct Throttle {
    config: LockoutConfig,
    entries: Mutex<HashMap<Key, Entry>>,
}

/// What the throttle says about an attempt before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead.
    Open,
    /// Refuse whatever the password, for about this long still.
    Locked(Duration),
}

impl Throttle {
    pub fn new(config: LockoutConfig) -> Throttle {
        Throttle {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn keys(name: &str, addr: Option<&str>) -> Vec<Key> {
        let mut keys = vec![Key::Name(name.to_string())];
        if let Some(a) = addr {
            keys.push(Key::Addr(a.to_string()));
        }
        keys
    }

    /// Whether the name or the address is locked out now.
    pub fn check(&self, name: &str, addr: Option<&str>) -> Verdict {
        if self.config.max_failures == 0 {
            return Verdict::Open;
        }
        let now = Instant::now();
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let mut longest = None;
        for key in Self::keys(name, addr) {
            if let Some(until) = entries.get(&key).and_then(|e| e.locked_until)
                && until > now
            {
                let left = until - now;
                longest = Some(longest.map_or(left, |l: Duration| l.max(left)));
            }
        }
        longest.map_or(Verdict::Open, Verdict::Locked)
    }

    /// Records a failure; returns how long to hold back the refusal.
    pub fn failed(&self, name: &str, addr: Option<&str>) -> Duration {
        if self.config.max_failures == 0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            self.prune(&mut entries, now);
        }
        let mut worst = 0;
        for key in Self::keys(name, addr) {
            let entry = entries.entry(key).or_insert(Entry {
                failures: 0,
                first: now,
                last: now,
                locked_until: None,
            });
            let lock_over = entry.locked_until.is_some_and(|u| u <= now);
            if now.duration_since(entry.first) > self.config.window || lock_over {
                *entry = Entry {
                    failures: 0,
                    first: now,
                    last: now,
                    locked_until: None,
                };
            }
            entry.failures = entry.failures.saturating_add(1);
            entry.last = now;
            if entry.failures >= self.config.max_failures && entry.locked_until.is_none() {
                entry.locked_until = Some(now + self.config.duration);
            }
            worst = worst.max(entry.failures);
        }
        let delay = self.config.delay.saturating_mul(worst.saturating_sub(1));
        delay.min(self.config.max_delay)
    }

    /// Records a success: the name's failures are forgotten.
    pub fn succeeded(&self, name: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&Key::Name(name.to_string()));
    }

    /// Drops entries that no longer matter, then the oldest ones if the
    /// table is still full.
    fn prune(&self, entries: &mut HashMap<Key, Entry>, now: Instant) {
        let window = self.config.window;
        entries.retain(|_, e| {
            e.locked_until.is_some_and(|u| u > now) || now.duration_since(e.last) <= window
        });
        if entries.len() >= MAX_ENTRIES {
            let mut ages: Vec<(Instant, Key)> =
                entries.iter().map(|(k, e)| (e.last, k.clone())).collect();
            ages.sort_by_key(|(t, _)| *t);
            for (_, key) in ages.into_iter().take(MAX_ENTRIES / 10) {
                entries.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max: u32) -> Throttle {
        Throttle::new(LockoutConfig {
            max_failures: max,
            delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(250),
            window: Duration::from_secs(60),
            duration: Duration::from_secs(30),
        })
    }

    #[test]
    fn failures_delay_then_lock_by_name_and_address() {
        let t = throttle(3);
        assert_eq!(t.failed("bob", Some("10.0.0.1")), Duration::ZERO);
        assert_eq!(
            t.failed("bob", Some("10.0.0.2")),
            Duration::from_millis(100)
        );
        assert_eq!(t.check("bob", Some("10.0.0.3")), Verdict::Open);
        assert_eq!(
            t.failed("bob", Some("10.0.0.3")),
            Duration::from_millis(200)
        );
        // The name is locked from any address; the addresses are not.
        assert!(matches!(
            t.check("bob", Some("10.0.0.9")),
            Verdict::Locked(_)
        ));
        assert_eq!(t.check("carol", Some("10.0.0.1")), Verdict::Open);
        // An address that failed for many names is locked for all of them.
        for name in ["x", "y", "z"] {
            t.failed(name, Some("10.9.9.9"));
        }
        assert!(matches!(
            t.check("new", Some("10.9.9.9")),
            Verdict::Locked(_)
        ));
        // Delays are capped.
        let t = throttle(100);
        for _ in 0..10 {
            t.failed("n", None);
        }
        assert_eq!(t.failed("n", None), Duration::from_millis(250));
    }

    #[test]
    fn success_resets_the_name_only() {
        let t = throttle(3);
        t.failed("bob", Some("a"));
        t.failed("bob", Some("a"));
        t.succeeded("bob");
        assert_eq!(t.failed("bob", Some("b")), Duration::ZERO);
        // The address still has two failures: the third locks it.
        t.failed("eve", Some("a"));
        assert!(matches!(t.check("anyone", Some("a")), Verdict::Locked(_)));
        assert_eq!(throttle(0).failed("x", None), Duration::ZERO);
    }
}
