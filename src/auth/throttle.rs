//! Login throttling: too many failed logins for one username, or from one address, within a
//! sliding window block further attempts for that name or address until enough of those
//! failures are older than the window.
//!
//! The per-name limit is low and the per-address limit higher, so guessing one account's
//! password is slowed quickly while other users behind the same address (an office NAT) keep
//! logging in. An address is charged once per name that failed from it, not once per failure:
//! a flood of guesses at one name blocks that name, never the other people at that address. A
//! blocked attempt is refused before its password is checked (and is not counted), so a blocked
//! attacker learns nothing. The failures live in the database, so every instance of the site
//! sees the same counts.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::client_addr::ClientAddress;
use crate::db::models::login_failure::{FailureCount, LoginFailure};
use crate::db::{DbConn, DbError};

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

/// What an address is counted as. An IPv6 client usually holds a whole /64 and can pick any
/// address in it, so the /64 is counted as one address.
fn address_key(address: ClientAddress) -> String {
    match address.ip() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let net = ipnet::Ipv6Net::new(v6, 64)
                .map(|n| n.trunc())
                .map(|n| n.to_string());
            net.unwrap_or_else(|_| v6.to_string())
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct LoginThrottle {
    policy: ThrottlePolicy,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self { policy }
    }

    fn window(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.policy.window).unwrap_or(chrono::Duration::MAX)
    }

    fn window_start(&self, now: DateTime<Utc>) -> NaiveDateTime {
        now.checked_sub_signed(self.window())
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
            .naive_utc()
    }

    /// The time left until `counted` drops under `limit`, if it is at or over it now.
    fn wait(&self, counted: FailureCount, limit: u32, now: DateTime<Utc>) -> Option<Duration> {
        if counted.count < i64::from(limit) {
            return None;
        }
        // When the oldest failure leaves the window the count drops by one, which is below
        // the limit unless concurrent failures overshot it; then the next attempt says so.
        let oldest = counted.oldest?.and_utc();
        let ends = oldest.checked_add_signed(self.window())?;
        Some((ends - now).to_std().unwrap_or(Duration::from_secs(1)))
    }

    /// `Some(wait)` when this name or address is blocked at `now`, with the time left.
    pub fn blocked_for(
        &self,
        conn: &mut DbConn,
        username: &str,
        address: Option<ClientAddress>,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, DbError> {
        let since = self.window_start(now);
        let by_name = LoginFailure::of_name_since(conn, username, since)?;
        let mut wait = self.wait(by_name, self.policy.per_name, now);
        if let Some(address) = address {
            let by_address =
                LoginFailure::names_from_address_since(conn, &address_key(address), since)?;
            wait = wait.max(self.wait(by_address, self.policy.per_address, now));
        }
        Ok(wait)
    }

    /// Counts this attempt as a failure *before* its password is checked, then decides: an
    /// attempt over a limit is refused (`Err(wait)`), any other gets the id of its record
    /// (`Ok`), which a successful login takes back with `succeeded`. Counting first is what
    /// makes the limits hold under concurrency: of many attempts racing at once, only the
    /// first `per_name` can see a count within the limit.
    pub fn begin_attempt(
        &self,
        conn: &mut DbConn,
        username: &str,
        address: Option<ClientAddress>,
        now: DateTime<Utc>,
    ) -> Result<Result<String, Duration>, DbError> {
        let key = address.map(address_key);
        let id = LoginFailure::record(
            conn,
            username,
            key.as_deref(),
            now.naive_utc(),
            self.window_start(now),
        )?;
        let since = self.window_start(now);
        let earlier = |mut counted: FailureCount| {
            counted.count -= 1;
            counted
        };
        let by_name = LoginFailure::of_name_since(conn, username, since)?;
        let mut wait = self.wait(earlier(by_name), self.policy.per_name, now);
        if let Some(key) = &key {
            let by_address = LoginFailure::names_from_address_since(conn, key, since)?;
            wait = wait.max(self.wait(earlier(by_address), self.policy.per_address, now));
        }
        Ok(match wait {
            Some(wait) => Err(wait),
            None => Ok(id),
        })
    }

    /// The attempt `id` was a successful login: it is not a failure, and the name's earlier
    /// failures stop counting against it.
    pub fn succeeded(&self, conn: &mut DbConn, id: &str, username: &str) -> Result<(), DbError> {
        LoginFailure::forget(conn, id)?;
        self.record_success(conn, username)
    }

    pub fn record_failure(
        &self,
        conn: &mut DbConn,
        username: &str,
        address: Option<ClientAddress>,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let address = address.map(address_key);
        LoginFailure::record(
            conn,
            username,
            address.as_deref(),
            now.naive_utc(),
            self.window_start(now),
        )
        .map(|_| ())
    }

    /// A successful login clears the name's counter (not the address's: one good password
    /// must not reset a guessing run against other names).
    pub fn record_success(&self, conn: &mut DbConn, username: &str) -> Result<(), DbError> {
        LoginFailure::clear_name(conn, username)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseUrl;
    use crate::db::Db;
    use crate::db::schema::login_failures;
    use diesel::prelude::*;

    struct Fixture {
        db: Db,
        _dir: tempfile::TempDir,
    }

    fn database() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = DatabaseUrl::Sqlite(dir.path().join("throttle.sqlite3"));
        let db = Db::connect(&url, 1).expect("database");
        db.run_migrations().expect("migrations");
        Fixture { db, _dir: dir }
    }

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottlePolicy {
            per_name: 3,
            per_address: 5,
            window: Duration::from_secs(60),
        })
    }

    fn ip(text: &str) -> Option<ClientAddress> {
        let headers = actix_web::http::header::HeaderMap::new();
        crate::client_addr::client_address(
            Some(text.parse().expect("address")),
            &headers,
            &Default::default(),
        )
    }

    fn rows(conn: &mut DbConn) -> i64 {
        login_failures::table
            .count()
            .get_result(conn)
            .expect("count")
    }

    #[test]
    fn a_name_is_blocked_after_its_limit_and_others_are_not() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let (t, now) = (throttle(), Utc::now());
        let addr = ip("10.0.0.1");
        for _ in 0..3 {
            assert!(t.blocked_for(conn, "alice", addr, now).unwrap().is_none());
            t.record_failure(conn, "alice", addr, now).unwrap();
        }
        let wait = t.blocked_for(conn, "alice", addr, now).unwrap();
        assert_eq!(wait, Some(Duration::from_secs(60)));
        assert!(t.blocked_for(conn, "alice", None, now).unwrap().is_some());
        assert!(t.blocked_for(conn, "bob", addr, now).unwrap().is_none());
    }

    #[test]
    fn an_address_is_blocked_after_its_limit_of_names() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let (t, now) = (throttle(), Utc::now());
        let addr = ip("10.0.0.2");
        for i in 0..5 {
            t.record_failure(conn, &format!("user{i}"), addr, now)
                .unwrap();
        }
        assert!(t.blocked_for(conn, "someone", addr, now).unwrap().is_some());
        assert!(
            t.blocked_for(conn, "someone", ip("10.0.0.3"), now)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn many_failures_for_one_name_do_not_block_its_address_for_other_names() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let (t, now) = (throttle(), Utc::now());
        let addr = ip("10.0.0.4");
        // More than the address limit, as concurrent requests that all passed the check would.
        for _ in 0..20 {
            t.record_failure(conn, "alice", addr, now).unwrap();
        }
        assert!(t.blocked_for(conn, "alice", addr, now).unwrap().is_some());
        assert!(t.blocked_for(conn, "bob", addr, now).unwrap().is_none());
    }

    #[test]
    fn an_ipv6_client_counts_as_its_64() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let (t, now) = (throttle(), Utc::now());
        for i in 0..5 {
            let addr = ip(&format!("2001:db8:1:2::{i}"));
            t.record_failure(conn, &format!("user{i}"), addr, now)
                .unwrap();
        }
        let same_64 = ip("2001:db8:1:2:ffff::1");
        assert!(t.blocked_for(conn, "x", same_64, now).unwrap().is_some());
        let other_64 = ip("2001:db8:1:3::1");
        assert!(t.blocked_for(conn, "x", other_64, now).unwrap().is_none());
    }

    #[test]
    fn success_clears_the_name_but_not_the_address() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let (t, now) = (throttle(), Utc::now());
        let addr = ip("10.0.0.5");
        for i in 0..4 {
            t.record_failure(conn, &format!("user{i}"), addr, now)
                .unwrap();
        }
        t.record_failure(conn, "alice", addr, now).unwrap();
        t.record_failure(conn, "alice", addr, now).unwrap();
        t.record_success(conn, "alice").unwrap();
        t.record_failure(conn, "alice", None, now).unwrap();
        assert!(t.blocked_for(conn, "alice", None, now).unwrap().is_none());
        // user0..3 and alice: five names from this address.
        assert!(t.blocked_for(conn, "carol", addr, now).unwrap().is_some());
    }

    #[test]
    fn the_window_slides_and_old_failures_are_deleted() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let t = throttle();
        let start = Utc::now();
        let later = |secs| start + chrono::Duration::seconds(secs);
        t.record_failure(conn, "alice", None, start).unwrap();
        t.record_failure(conn, "alice", None, later(20)).unwrap();
        t.record_failure(conn, "alice", None, later(40)).unwrap();
        assert_eq!(
            t.blocked_for(conn, "alice", None, later(45)).unwrap(),
            Some(Duration::from_secs(15))
        );
        // The first failure has left the window: two remain, under the limit of three.
        assert!(
            t.blocked_for(conn, "alice", None, later(61))
                .unwrap()
                .is_none()
        );
        assert_eq!(rows(conn), 3);
        t.record_failure(conn, "bob", None, later(130)).unwrap();
        assert_eq!(rows(conn), 1, "failures older than the window were kept");
    }
}
