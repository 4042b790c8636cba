//! What a share link is made of: its secret token and its lifetime.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A share link's secret: 256 random bits, URL-safe base64 without padding (43 characters).
/// Only its SHA-256 is stored; the token itself exists in the creator's page once and in
/// the URL the recipient holds.
#[derive(Clone, PartialEq, Eq)]
pub struct ShareToken(String);

impl ShareToken {
    const BYTES: usize = 32;

    pub fn generate() -> Self {
        Self(URL_SAFE_NO_PAD.encode(rand::random::<[u8; Self::BYTES]>()))
    }

    /// Accepts exactly the shape `generate` makes; anything else is no link at all.
    pub fn parse(value: &str) -> Option<Self> {
        if value.len() != 43 {
            return None;
        }
        // A strict decode: the last character's unused bits must be zero, so one token has
        // one spelling.
        let decoded = URL_SAFE_NO_PAD.decode(value).ok()?;
        (decoded.len() == Self::BYTES).then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the database keeps: lower-case hex of the SHA-256 of the token's text.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

// Never printed by accident (logs, panics): a token in a log is a link anyone can use.
impl std::fmt::Debug for ShareToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShareToken(…)")
    }
}

/// How long a link lasts, in whole hours: `1h`, `1d`, `7d`, `30d`, any `<n>h` or `<n>d`, or a
/// bare number of hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LinkLifetime {
    hours: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLifetime {
    #[error("“{0}” is not a duration: use 1h, 1d, 7d, 30d or a number of hours")]
    Unreadable(String),
    #[error("a link lasts at least an hour")]
    TooShort,
    #[error("a link lasts at most {0}")]
    TooLong(LinkLifetime),
}

impl LinkLifetime {
    /// Ten years: a bound that keeps every expiry a valid timestamp.
    const MAX_HOURS: u32 = 10 * 366 * 24;

    pub fn parse(value: &str) -> Result<Self, InvalidLifetime> {
        let value = value.trim();
        let unreadable = || InvalidLifetime::Unreadable(value.to_owned());
        let lower = value.to_ascii_lowercase();
        let (number, per_unit) = if let Some(days) = lower.strip_suffix('d') {
            (days, 24)
        } else if let Some(hours) = lower.strip_suffix('h') {
            (hours, 1)
        } else {
            (lower.as_str(), 1)
        };
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unreadable());
        }
        let count: u32 = number.parse().map_err(|_| unreadable())?;
        let hours = count.checked_mul(per_unit).ok_or_else(unreadable)?;
        if hours == 0 {
            return Err(InvalidLifetime::TooShort);
        }
        if hours > Self::MAX_HOURS {
            return Err(InvalidLifetime::TooLong(Self {
                hours: Self::MAX_HOURS,
            }));
        }
        Ok(Self { hours })
    }

    /// `parse`, refusing more than `max`.
    pub fn parse_within(value: &str, max: LinkLifetime) -> Result<Self, InvalidLifetime> {
        let lifetime = match Self::parse(value) {
            Err(InvalidLifetime::TooLong(_)) => return Err(InvalidLifetime::TooLong(max)),
            other => other?,
        };
        if lifetime > max {
            return Err(InvalidLifetime::TooLong(max));
        }
        Ok(lifetime)
    }

    pub const fn days(days: u32) -> Self {
        Self { hours: days * 24 }
    }

    pub fn hours(self) -> u32 {
        self.hours
    }
}

impl std::fmt::Display for LinkLifetime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.hours {
            1 => f.write_str("1 hour"),
            24 => f.write_str("1 day"),
            h if h % 24 == 0 => write!(f, "{} days", h / 24),
            h => write!(f, "{h} hours"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_parse_only_in_their_own_shape() {
        let token = ShareToken::generate();
        assert_eq!(token.as_str().len(), 43);
        assert_ne!(token, ShareToken::generate());
        assert_eq!(ShareToken::parse(token.as_str()), Some(token.clone()));
        assert_eq!(token.digest().len(), 64);
        assert_ne!(token.digest(), ShareToken::generate().digest());
        assert_eq!(format!("{token:?}"), "ShareToken(…)");
        let good = token.as_str();
        for bad in [
            "",
            &good[..42],
            &format!("{good}A"),
            &format!("{}+", &good[..42]),
            &format!("{}/", &good[..42]),
            &format!("{}=", &good[..42]),
            "../../../../../../../../../../../etc/passwd",
        ] {
            assert_eq!(ShareToken::parse(bad), None, "{bad}");
        }
        // The last character carries 4 unused bits: only the spelling with them zero is taken.
        let last = good.as_bytes()[42];
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let index = alphabet.iter().position(|&c| c == last).unwrap();
        let other = alphabet[index ^ 1] as char;
        assert_eq!(ShareToken::parse(&format!("{}{other}", &good[..42])), None);
    }

    #[test]
    fn lifetimes_read_hours_and_days_within_the_maximum() {
        let max = LinkLifetime::days(90);
        for (text, hours) in [
            ("1h", 1),
            ("1d", 24),
            ("7d", 168),
            ("30d", 720),
            ("48", 48),
            (" 12H ", 12),
            ("90d", 2160),
        ] {
            assert_eq!(
                LinkLifetime::parse_within(text, max).map(LinkLifetime::hours),
                Ok(hours),
                "{text}"
            );
        }
        for too_long in ["91d", "99999999d", "4294967295"] {
            assert_eq!(
                LinkLifetime::parse_within(too_long, max),
                Err(InvalidLifetime::TooLong(max)),
                "{too_long}"
            );
        }
        assert_eq!(LinkLifetime::parse("0"), Err(InvalidLifetime::TooShort));
        assert_eq!(LinkLifetime::parse("0d"), Err(InvalidLifetime::TooShort));
        for bad in ["", "d", "-1", "1.5d", "1w", "1 d", "99999999999d", "+3"] {
            assert!(
                matches!(
                    LinkLifetime::parse(bad),
                    Err(InvalidLifetime::Unreadable(_) | InvalidLifetime::TooLong(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(LinkLifetime::days(90).to_string(), "90 days");
        assert_eq!(LinkLifetime::parse("1h").unwrap().to_string(), "1 hour");
        assert_eq!(LinkLifetime::parse("5").unwrap().to_string(), "5 hours");
    }
}
