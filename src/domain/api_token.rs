//! What an API token is made of: its secret and how long it lasts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use crate::domain::{InvalidLifetime, LinkLifetime};

/// An API token's secret: `pm_` and 256 random bits as URL-safe base64 without padding (46
/// characters in all). The prefix makes a leaked token recognisable (secret scanners, a
/// reviewer); only the SHA-256 is stored, and the token is shown once, to whoever made it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    pub const PREFIX: &'static str = "pm_";
    const BYTES: usize = 32;
    const ENCODED: usize = 43;

    pub fn generate() -> Self {
        Self(format!(
            "{}{}",
            Self::PREFIX,
            URL_SAFE_NO_PAD.encode(rand::random::<[u8; Self::BYTES]>())
        ))
    }

    /// Accepts exactly the shape `generate` makes; anything else is no token at all.
    pub fn parse(value: &str) -> Option<Self> {
        let encoded = value.strip_prefix(Self::PREFIX)?;
        if encoded.len() != Self::ENCODED {
            return None;
        }
        // Strict: one token has one spelling (the last character's unused bits are zero).
        let decoded = URL_SAFE_NO_PAD.decode(encoded).ok()?;
        (decoded.len() == Self::BYTES).then(|| Self(value.to_owned()))
    }

    /// The secret itself, for the one place that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the database keeps and looks up: lower-case hex of the SHA-256 of the text.
    pub fn digest(&self) -> String {
        Self::digest_of(&self.0)
    }

    /// The digest of any text presented as a token, well-formed or not: what the failure
    /// throttle counts a bad token by, without keeping the text.
    pub fn digest_of(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

// Never printed by accident (logs, panics): a token in a log is an account anyone can use.
impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(…)")
    }
}

/// How long a new token lasts: a lifetime as share links take it (`30d`, `90d`, `12h`, up to
/// ten years), or `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenExpiry(Option<LinkLifetime>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} (or `never`)")]
pub struct InvalidExpiry(InvalidLifetime);

impl TokenExpiry {
    /// What a token lasts when nobody says.
    pub const DEFAULT: TokenExpiry = TokenExpiry(Some(LinkLifetime::days(90)));

    pub fn parse(value: &str) -> Result<Self, InvalidExpiry> {
        if value.trim().eq_ignore_ascii_case("never") {
            return Ok(Self(None));
        }
        LinkLifetime::parse(value)
            .map(|l| Self(Some(l)))
            .map_err(InvalidExpiry)
    }

    /// When a token made at `now` stops working, if ever.
    pub fn expires_at(self, now: chrono::NaiveDateTime) -> Option<chrono::NaiveDateTime> {
        self.0
            .map(|l| now + chrono::Duration::hours(i64::from(l.hours())))
    }
}

/// The name a token is given: trimmed, control characters dropped, at most 100 characters.
pub fn token_name(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .chars()
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_parse_only_in_their_own_shape() {
        let token = ApiToken::generate();
        assert!(token.expose().starts_with("pm_"));
        assert_eq!(token.expose().len(), 46);
        assert_ne!(token, ApiToken::generate());
        assert_eq!(ApiToken::parse(token.expose()), Some(token.clone()));
        assert_eq!(token.digest().len(), 64);
        assert_eq!(token.digest(), ApiToken::digest_of(token.expose()));
        assert_eq!(format!("{token:?}"), "ApiToken(…)");
        let good = token.expose();
        for bad in [
            "",
            "pm_",
            &good[3..],
            &good[..45],
            &format!("{good}A"),
            &format!("xx_{}", &good[3..]),
            &format!("{}=", &good[..45]),
        ] {
            assert_eq!(ApiToken::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn expiries_are_lifetimes_or_never() {
        let now = chrono::NaiveDate::from_ymd_opt(2026, 12, 7)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .unwrap();
        assert_eq!(TokenExpiry::parse("never").unwrap().expires_at(now), None);
        assert_eq!(
            TokenExpiry::parse("90d").unwrap().expires_at(now),
            Some(now + chrono::Duration::days(90))
        );
        assert_eq!(TokenExpiry::DEFAULT, TokenExpiry::parse("90d").unwrap());
        for bad in ["", "0", "1w", "soon"] {
            assert!(TokenExpiry::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(token_name("  ci \u{7} deploy  "), "ci  deploy");
        assert_eq!(token_name(&"x".repeat(300)).len(), 100);
    }
}
