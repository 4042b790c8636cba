//! Throttling of bad API tokens: a token that failed `PER_TOKEN` times within the window is
//! refused (429) before it is looked up again; an address that presented `PER_ADDRESS`
//! different bad tokens within it gets 429 for every bad one after (a good one is still
//! served, so it is looked up: `auth::bearer`). As the login throttle counts an address once
//! per name, an address is charged once per token: one script retrying a revoked token blocks
//! that token, never the other people behind the same address.
//!
//! The counts live in this instance's memory, not in the database: a bad token costs no write.
//! Behind a load balancer each instance counts its own share (README: "Scripting"). Tokens are
//! 256 random bits, so none of this is what keeps them from being guessed: the per-token limit
//! spares the database a client stuck retrying one, the address limit marks a flood.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures of one token within the window before it is refused.
pub const PER_TOKEN: usize = 10;
/// Different bad tokens from one address within the window before it is refused.
pub const PER_ADDRESS: usize = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept at most; past it the oldest failures are forgotten first.
const MAX_KEYS: usize = 100_000;

#[derive(Default)]
struct Failures {
    /// By token digest: when it failed, oldest first.
    by_token: HashMap<String, VecDeque<Instant>>,
    /// By address: each bad token's digest and when it last failed.
    by_address: HashMap<String, HashMap<String, Instant>>,
}

#[derive(Default)]
pub struct TokenThrottle {
    failures: Mutex<Failures>,
}

/// What an address is counted as: an IPv6 client holds a whole /64.
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => ipnet::Ipv6Net::new(v6, 64)
            .map(|n| n.trunc().to_string())
            .unwrap_or_else(|_| v6.to_string()),
    }
}

fn in_window(at: &Instant, now: Instant) -> bool {
    now.saturating_duration_since(*at) < WINDOW
}

fn wait_from(oldest: Instant, now: Instant) -> Duration {
    (oldest + WINDOW)
        .saturating_duration_since(now)
        .max(Duration::from_secs(1))
}

impl TokenThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, Failures> {
        // The maps stay consistent whatever a panicking holder did: each change is one insert.
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long a request with the token of `digest` from `ip` must wait, if it is refused.
    pub fn check(&self, digest: &str, ip: Option<IpAddr>, now: Instant) -> Option<Duration> {
        self.check_token(digest, now)
            .max(ip.and_then(|ip| self.check_address(ip, now)))
    }

    /// How long the token of `digest` must wait, if it failed too often.
    pub fn check_token(&self, digest: &str, now: Instant) -> Option<Duration> {
        let failures = self.lock();
        let times = failures.by_token.get(digest)?;
        let recent: Vec<&Instant> = times.iter().filter(|t| in_window(t, now)).collect();
        if recent.len() >= PER_TOKEN {
            return recent.first().map(|oldest| wait_from(**oldest, now));
        }
        None
    }

    /// How long bad tokens from `ip` must wait, if too many were tried from there. A good
    /// token is not asked this: a neighbour behind the same address guessing cannot lock
    /// its holder out.
    pub fn check_address(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let failures = self.lock();
        let tokens = failures.by_address.get(&address_key(ip))?;
        let recent: Vec<&Instant> = tokens.values().filter(|t| in_window(t, now)).collect();
        if recent.len() >= PER_ADDRESS {
            return recent
                .into_iter()
                .min()
                .map(|oldest| wait_from(*oldest, now));
        }
        None
    }

    /// Counts a failure of the token of `digest` from `ip`.
    pub fn failed(&self, digest: &str, ip: Option<IpAddr>, now: Instant) {
        let mut failures = self.lock();
        if failures.by_token.len() >= MAX_KEYS {
            failures.forget_before(now);
        }
        if failures.by_token.len() >= MAX_KEYS {
            // Still full of live failures: start over rather than grow without bound.
            *failures = Failures::default();
        }
        let times = failures.by_token.entry(digest.to_owned()).or_default();
        times.push_back(now);
        while times.len() > PER_TOKEN {
            times.pop_front();
        }
        if let Some(ip) = ip {
            let tokens = failures.by_address.entry(address_key(ip)).or_default();
            tokens.insert(digest.to_owned(), now);
            if tokens.len() > 4 * PER_ADDRESS {
                tokens.retain(|_, at| now.saturating_duration_since(*at) < WINDOW);
            }
        }
    }

    /// The throttle's whole state for tests: how many tokens it counts.
    #[cfg(test)]
    fn tokens_counted(&self) -> usize {
        self.lock().by_token.len()
    }
}

impl Failures {
    fn forget_before(&mut self, now: Instant) {
        let live = |at: &Instant| now.saturating_duration_since(*at) < WINDOW;
        self.by_token
            .retain(|_, times| times.back().is_some_and(live));
        self.by_address.retain(|_, tokens| {
            tokens.retain(|_, at| live(at));
            !tokens.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn a_token_is_refused_after_its_failures_until_they_leave_the_window() {
        let throttle = TokenThrottle::default();
        let start = Instant::now();
        for i in 0..PER_TOKEN {
            assert_eq!(throttle.check("bad", ip("10.0.0.1"), start), None, "{i}");
            throttle.failed("bad", ip("10.0.0.1"), start);
        }
        let wait = throttle
            .check("bad", ip("10.0.0.1"), start)
            .expect("refused");
        assert!(wait > Duration::from_secs(14 * 60), "{wait:?}");
        // Another token from the same address is not refused for it.
        assert_eq!(throttle.check("other", ip("10.0.0.1"), start), None);
        assert_eq!(throttle.check("bad", ip("10.0.0.1"), start + WINDOW), None);
    }

    #[test]
    fn an_address_is_refused_after_many_different_bad_tokens() {
        let throttle = TokenThrottle::default();
        let now = Instant::now();
        for i in 0..PER_ADDRESS {
            throttle.failed(&format!("t{i}"), ip("2001:db8::1"), now);
        }
        assert!(
            throttle.check("fresh", ip("2001:db8::2"), now).is_some(),
            "same /64"
        );
        assert_eq!(throttle.check("fresh", ip("2001:db9::1"), now), None);
        assert_eq!(throttle.check("fresh", None, now), None);
        assert_eq!(throttle.tokens_counted(), PER_ADDRESS);
    }

    #[test]
    fn one_token_failing_often_charges_its_address_once() {
        let throttle = TokenThrottle::default();
        let now = Instant::now();
        for _ in 0..(PER_ADDRESS * 3) {
            throttle.failed("revoked", ip("10.0.0.9"), now);
        }
        assert_eq!(throttle.check("good", ip("10.0.0.9"), now), None);
    }
}
