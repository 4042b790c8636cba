//! Passwords: the policy for new ones, argon2id hashing, and verification that takes the same
//! time whether or not the user exists.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash as Phc;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::domain::PasswordHash;

/// A new password that meets the policy. Only ever held briefly, never logged.
pub struct NewPassword(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("a password must be at least {} characters long", NewPassword::MIN_LEN)]
    TooShort,
    #[error("a password must be at most {} bytes long", NewPassword::MAX_BYTES)]
    TooLong,
    #[error("hashing the password failed: {0}")]
    Hash(String),
    #[error("the password check was cancelled: {0}")]
    Cancelled(String),
}

impl NewPassword {
    pub const MIN_LEN: usize = 8;
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(value: String) -> Result<Self, PasswordError> {
        if value.trim().chars().count() < Self::MIN_LEN {
            return Err(PasswordError::TooShort);
        }
        if value.len() > Self::MAX_BYTES {
            return Err(PasswordError::TooLong);
        }
        Ok(Self(value))
    }

    /// The plain text, for the one place that shows it: the generated first password.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Hashes with argon2id (default, OWASP-recommended parameters) and a random salt.
    /// Slow on purpose: call it off the async threads.
    pub fn hash(&self) -> Result<PasswordHash, PasswordError> {
        hash_str(&self.0)
    }
}

fn hash_str(password: &str) -> Result<PasswordHash, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| PasswordHash::from_phc(h.to_string()))
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// A hash of a random password with the same parameters as real ones: verifying against it
/// costs what a real check costs, so an unknown username answers as slowly as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_str(&crate::ids::random_token())
            .map(PasswordHash::into_string)
            .unwrap_or_default()
    })
}

/// How many argon2 runs the server lets go at once: as many as it has cores. Each holds a
/// 19 MiB block and a core for its whole run, so more at once finish no sooner, they only add
/// 19 MiB each (30 logins in flight took the server to 279 MiB, bench/README.md) and hold
/// blocking threads that uploads and queries need.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

/// Waits for a turn to hash or verify a password; hold it until the hash is done. (`None`
/// only if the semaphore were closed, which nothing does: the hash then runs unbounded.)
pub async fn hashing_turn() -> Option<tokio::sync::SemaphorePermit<'static>> {
    hashing_slots().acquire().await.ok()
}

/// Hashes `password` in its turn on the blocking pool, holding no database connection (a
/// pooled connection held through a 19 MiB, ~50 ms argon2 run would starve other requests).
/// The turn goes with the hash: a request dropped meanwhile does not free it early.
pub async fn hash_in_turn(password: NewPassword) -> Result<PasswordHash, PasswordError> {
    let turn = hashing_turn().await;
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        password.hash()
    })
    .await
    .map_err(|e| PasswordError::Cancelled(e.to_string()))?
}

/// `verify` in its turn on the blocking pool, as `hash_in_turn`.
pub async fn verify_in_turn(
    password: String,
    stored: Option<String>,
) -> Result<bool, PasswordError> {
    let turn = hashing_turn().await;
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        verify(&password, stored.as_deref())
    })
    .await
    .map_err(|e| PasswordError::Cancelled(e.to_string()))
}

/// Checks `password` against `stored`, or against the dummy hash when there is no user.
/// Slow on purpose: call it off the async threads.
pub fn verify(password: &str, stored: Option<&str>) -> bool {
    let found = stored.is_some();
    let hash = stored.unwrap_or_else(|| dummy_hash());
    let ok = match Phc::new(hash) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    };
    found && ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_password() {
        let hash = NewPassword::parse("correct horse".into())
            .unwrap()
            .hash()
            .unwrap()
            .into_string();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse", Some(&hash)));
        assert!(!verify("correct horsE", Some(&hash)));
        assert!(!verify("correct horse", None));
        assert!(!verify("x", Some("not a hash")));
    }

    #[test]
    fn the_policy_rejects_short_and_huge_passwords() {
        assert_eq!(
            NewPassword::parse("short".into()).err(),
            Some(PasswordError::TooShort)
        );
        assert_eq!(
            NewPassword::parse("        x".into()).err(),
            Some(PasswordError::TooShort)
        );
        assert_eq!(
            NewPassword::parse("x".repeat(2000)).err(),
            Some(PasswordError::TooLong)
        );
    }
}
