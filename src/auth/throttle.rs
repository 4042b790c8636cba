//! Login throttling: too many failed logins for one username, or from one address, within a
//! window block further attempts for that name or address until the window ends.
//!
//! The per-name limit is low and the per-address limit higher, so guessing one account's
//! password is slowed quickly while other users behind the same address (an office NAT) keep
//! logging in. A blocked attempt is refused before its password is checked, so a blocked
//! attacker learns nothing. Counters live in this process: with several instances each counts
//! on its own, so the effective limits multiply by the number of instances.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    pub per_name: u32,
    pub per_address: u32,
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            per_name: 5,
            per_address: 30,
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Hash, PartialEq, Eq, Clone)]
enum Key {
    Name(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Bounds memory under a flood of distinct names: past this, expired entries are swept.
const SWEEP_AT: usize = 10_000;

pub struct LoginThrottle {
    policy: ThrottlePolicy,
    windows: Mutex<HashMap<Key, Window>>,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn limit(&self, key: &Key) -> u32 {
        match key {
            Key::Name(_) => self.policy.per_name,
            Key::Address(_) => self.policy.per_address,
        }
    }

    fn keys(username: &str, address: Option<IpAddr>) -> Vec<Key> {
        let mut keys = vec![Key::Name(username.to_owned())];
        keys.extend(address.map(Key::Address));
        keys
    }

    /// `Some(wait)` when this name or address is blocked, with the time left.
    pub fn blocked_for(&self, username: &str, address: Option<IpAddr>) -> Option<Duration> {
        let now = Instant::now();
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        Self::keys(username, address)
            .iter()
            .filter_map(|key| {
                let w = windows.get(key)?;
                let elapsed = now.duration_since(w.started);
                (w.failures >= self.limit(key) && elapsed < self.policy.window)
                    .then(|| self.policy.window - elapsed)
            })
            .max()
    }

    pub fn record_failure(&self, username: &str, address: Option<IpAddr>) {
        let now = Instant::now();
        let window = self.policy.window;
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= SWEEP_AT {
            windows.retain(|_, w| now.duration_since(w.started) < window);
        }
        for key in Self::keys(username, address) {
            let entry = windows.entry(key).or_insert(Window {
                started: now,
                failures: 0,
            });
            if now.duration_since(entry.started) >= window {
                *entry = Window {
                    started: now,
                    failures: 0,
                };
            }
            entry.failures += 1;
        }
    }

    /// A successful login clears the name's counter (not the address's: one good password
    /// must not reset a guessing run against other names).
    pub fn record_success(&self, username: &str) {
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        windows.remove(&Key::Name(username.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottlePolicy {
            per_name: 3,
            per_address: 5,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn a_name_is_blocked_after_its_limit_and_others_are_not() {
        let t = throttle();
        let ip = Some("10.0.0.1".parse().unwrap());
        for _ in 0..3 {
            assert!(t.blocked_for("alice", ip).is_none());
            t.record_failure("alice", ip);
        }
        assert!(t.blocked_for("alice", ip).is_some());
        assert!(t.blocked_for("alice", None).is_some());
        assert!(t.blocked_for("bob", ip).is_none());
    }

    #[test]
    fn an_address_is_blocked_after_its_limit() {
        let t = throttle();
        let ip = Some("10.0.0.2".parse().unwrap());
        for i in 0..5 {
            t.record_failure(&format!("user{i}"), ip);
        }
        assert!(t.blocked_for("someone", ip).is_some());
        assert!(
            t.blocked_for("someone", Some("10.0.0.3".parse().unwrap()))
                .is_none()
        );
    }

    #[test]
    fn success_clears_the_name() {
        let t = throttle();
        t.record_failure("alice", None);
        t.record_failure("alice", None);
        t.record_success("alice");
        t.record_failure("alice", None);
        assert!(t.blocked_for("alice", None).is_none());
    }

    #[test]
    fn the_window_expires() {
        let t = LoginThrottle::new(ThrottlePolicy {
            per_name: 1,
            per_address: 10,
            window: Duration::from_millis(20),
        });
        t.record_failure("alice", None);
        assert!(t.blocked_for("alice", None).is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(t.blocked_for("alice", None).is_none());
    }
}
