//! Login throttling: too many failed logins for one username, or from one address, within a
//! sliding window block further attempts for that name or address until enough of those
//! failures are older than the window.
//!
//! The per-name limit is low and the per-address limit higher, so guessing one account's
//! password is slowed quickly while other users behind the same address (an office NAT) keep
//! logging in. An address is charged once per name that failed from it, not once per failure:
//! a flood of guesses at one name blocks that name, never the other people at that address. A
//! blocked attempt is refused before its password is checked, so a blocked attacker learns
//! nothing, and it is not recorded: refused attempts cost reads only, however many come, and
//! `Retry-After` tells when the oldest failure leaves the window. The failures live in the
//! database, so every instance of the site sees the same counts.

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

    /// How long an attempt must wait, if the failures already counted put it over a limit.
    /// `own` is how many of the name's counted failures are this attempt's own record (0 or
    /// 1); an address's count leaves this name out, as the name is charged to it only once.
    fn over_a_limit(
        &self,
        conn: &mut DbConn,
        username: &str,
        key: Option<&str>,
        own: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, DbError> {
        let since = self.window_start(now);
        let mut by_name = LoginFailure::of_name_since(conn, username, since)?;
        by_name.count -= own;
        let mut wait = self.wait(by_name, self.policy.per_name, now);
        if let Some(key) = key {
            let others = LoginFailure::other_names_from_address_since(conn, key, username, since)?;
            wait = wait.max(self.wait(others, self.policy.per_address, now));
        }
        Ok(wait)
    }

    /// Decides on an attempt *before* its password is checked: one over a limit is refused
    /// (`Err(wait)`), any other is counted as a failure and gets the id of its record (`Ok`),
    /// which a successful login takes back with `succeeded`.
    ///
    /// An attempt the failures already counted refuse is refused on reads alone: it writes
    /// nothing, so a flood of refused attempts neither grows the table nor the database's
    /// log, and costs no more as it goes on. One under the limits is recorded, then counted
    /// again with its own record: of many attempts racing past the first read, only the first
    /// `per_name` can see a count within the limit, and the others take their records back.
    pub fn begin_attempt(
        &self,
        conn: &mut DbConn,
        username: &str,
        address: Option<ClientAddress>,
        now: DateTime<Utc>,
    ) -> Result<Result<String, Duration>, DbError> {
        let key = address.map(address_key);
        if let Some(wait) = self.over_a_limit(conn, username, key.as_deref(), 0, now)? {
            return Ok(Err(wait));
        }
        let id = LoginFailure::record(
            conn,
            username,
            key.as_deref(),
            now.naive_utc(),
            self.window_start(now),
        )?;
        match self.over_a_limit(conn, username, key.as_deref(), 1, now)? {
            Some(wait) => {
                LoginFailure::forget(conn, &id)?;
                Ok(Err(wait))
            }
            None => Ok(Ok(id)),
        }
    }

    /// The attempt `id` was a successful login: it is not a failure, and the name's earlier
    /// failures stop counting against it.
    pub fn succeeded(&self, conn: &mut DbConn, id: &str, username: &str) -> Result<(), DbError> {
        LoginFailure::forget(conn, id)?;
        self.record_success(conn, username)
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

    /// Starts a login attempt that then fails: `Ok` if its password would be checked, the
    /// wait if it is refused.
    fn failed_attempt(
        t: &LoginThrottle,
        conn: &mut DbConn,
        username: &str,
        address: Option<ClientAddress>,
        now: DateTime<Utc>,
    ) -> Result<(), Duration> {
        t.begin_attempt(conn, username, address, now)
            .expect("begin")
            .map(|_| ())
    }

    #[test]
    fn a_name_is_blocked_after_its_limit_and_others_are_not() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let (t, now) = (throttle(), Utc::now());
        let addr = ip("10.0.0.1");
        for _ in 0..3 {
            assert_eq!(failed_attempt(&t, conn, "alice", addr, now), Ok(()));
        }
        assert_eq!(
            failed_attempt(&t, conn, "alice", addr, now),
            Err(Duration::from_secs(60))
        );
        assert!(failed_attempt(&t, conn, "alice", None, now).is_err());
        assert_eq!(failed_attempt(&t, conn, "bob", addr, now), Ok(()));
    }

    #[test]
    fn an_address_is_blocked_after_its_limit_of_names() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let (t, now) = (throttle(), Utc::now());
        let addr = ip("10.0.0.2");
        for i in 0..5 {
            let name = format!("user{i}");
            assert_eq!(failed_attempt(&t, conn, &name, addr, now), Ok(()), "{name}");
        }
        assert!(failed_attempt(&t, conn, "someone", addr, now).is_err());
        assert_eq!(
            failed_attempt(&t, conn, "someone", ip("10.0.0.3"), now),
            Ok(())
        );
    }

    #[test]
    fn many_failures_for_one_name_do_not_block_its_address_for_other_names() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let (t, now) = (throttle(), Utc::now());
        let addr = ip("10.0.0.4");
        // More attempts than the address limit.
        for i in 0..20 {
            let refused = failed_attempt(&t, conn, "alice", addr, now).is_err();
            assert_eq!(refused, i >= 3, "attempt {i}");
        }
        assert_eq!(failed_attempt(&t, conn, "bob", addr, now), Ok(()));
    }

    #[test]
    fn a_refused_attempt_writes_nothing() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let (t, now) = (throttle(), Utc::now());
        let addr = ip("10.0.0.7");
        for _ in 0..3 {
            assert_eq!(failed_attempt(&t, conn, "alice", addr, now), Ok(()));
        }
        for i in 0..5 {
            let name = format!("user{i}");
            let _ = failed_attempt(&t, conn, &name, addr, now);
        }
        let before = rows(conn);
        for _ in 0..50 {
            assert!(failed_attempt(&t, conn, "alice", addr, now).is_err());
            assert!(failed_attempt(&t, conn, "someone", addr, now).is_err());
        }
        assert_eq!(rows(conn), before);
        // Nor does refusing make the block last longer: it ends with the window.
        let later = now + chrono::Duration::seconds(61);
        assert_eq!(failed_attempt(&t, conn, "alice", addr, later), Ok(()));
    }

    #[test]
    fn an_ipv6_client_counts_as_its_64() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let (t, now) = (throttle(), Utc::now());
        for i in 0..5 {
            let addr = ip(&format!("2001:db8:1:2::{i}"));
            assert_eq!(
                failed_attempt(&t, conn, &format!("user{i}"), addr, now),
                Ok(())
            );
        }
        let same_64 = ip("2001:db8:1:2:ffff::1");
        assert!(failed_attempt(&t, conn, "x", same_64, now).is_err());
        let other_64 = ip("2001:db8:1:3::1");
        assert_eq!(failed_attempt(&t, conn, "x", other_64, now), Ok(()));
    }

    #[test]
    fn success_clears_the_name_but_not_the_address() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let (t, now) = (throttle(), Utc::now());
        let addr = ip("10.0.0.5");
        for i in 0..4 {
            assert_eq!(
                failed_attempt(&t, conn, &format!("user{i}"), addr, now),
                Ok(())
            );
        }
        for _ in 0..2 {
            assert_eq!(failed_attempt(&t, conn, "alice", addr, now), Ok(()));
        }
        let before = rows(conn);
        let attempt = t
            .begin_attempt(conn, "alice", addr, now)
            .unwrap()
            .expect("under the limit");
        t.succeeded(conn, &attempt, "alice").unwrap();
        assert_eq!(rows(conn), before, "the success kept its record");
        // Without the clearing, the second of these would be refused: alice's fourth failure.
        for _ in 0..2 {
            assert_eq!(failed_attempt(&t, conn, "alice", None, now), Ok(()));
        }
        // user0..3 and alice: five names from this address.
        assert!(failed_attempt(&t, conn, "carol", addr, now).is_err());
    }

    #[test]
    fn successful_logins_are_not_counted() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let (t, now) = (throttle(), Utc::now());
        let addr = ip("10.0.0.6");
        for i in 0..10 {
            let attempt = t.begin_attempt(conn, "alice", addr, now).unwrap();
            let attempt = attempt.unwrap_or_else(|wait| panic!("login {i} refused for {wait:?}"));
            t.succeeded(conn, &attempt, "alice").unwrap();
        }
        assert_eq!(rows(conn), 0);
    }

    #[test]
    fn the_wait_lasts_until_the_oldest_failure_leaves_the_window() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let t = throttle();
        let start = Utc::now();
        let later = |secs| start + chrono::Duration::seconds(secs);
        for secs in [0, 20, 40] {
            assert_eq!(failed_attempt(&t, conn, "alice", None, later(secs)), Ok(()));
        }
        assert_eq!(
            failed_attempt(&t, conn, "alice", None, later(45)),
            Err(Duration::from_secs(15))
        );
    }

    #[test]
    fn the_window_slides_and_old_failures_are_deleted() {
        let fixture = database();
        let conn = &mut *fixture.db.get().unwrap();
        let t = throttle();
        let start = Utc::now();
        let later = |secs| start + chrono::Duration::seconds(secs);
        for secs in [0, 20, 40] {
            assert_eq!(failed_attempt(&t, conn, "alice", None, later(secs)), Ok(()));
        }
        assert_eq!(rows(conn), 3);
        // The first failure has left the window: two remain, under the limit of three.
        assert_eq!(failed_attempt(&t, conn, "alice", None, later(61)), Ok(()));
        assert_eq!(rows(conn), 3, "the failure older than the window was kept");
        assert_eq!(failed_attempt(&t, conn, "bob", None, later(130)), Ok(()));
        assert_eq!(rows(conn), 1, "failures older than the window were kept");
    }
}
