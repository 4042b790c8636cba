//! `DATABASE_URL`: SQLite or PostgreSQL, and how it is shown without its password.
//!
//! A PostgreSQL URL may carry a password, so it is kept as a `SecretString`: its `Debug` is the
//! redacted URL, and only `Db` exposes it, to open a connection.

use std::ops::Range;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(SecretString),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            Self::Postgres(_) => f.debug_tuple("Postgres").field(&self.redacted()).finish(),
        }
    }
}

impl DatabaseUrl {
    /// The URL to show a person: a PostgreSQL password is replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => redact_postgres(url.expose_secret()),
        }
    }

    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("`sqlite://` needs a file path, e.g. sqlite://data/db.sqlite3".into());
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(SecretString::from(url)))
        } else {
            Err("expected `sqlite://PATH` or `postgres://…`".into())
        }
    }

    /// `message` (a client library's error about this URL) with every password the URL holds
    /// replaced by `***`, as written and percent-decoded: libpq quotes parts of a URL it
    /// cannot parse.
    pub fn scrub(&self, message: &str) -> String {
        let Self::Postgres(url) = self else {
            return message.to_owned();
        };
        let url = url.expose_secret();
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let mut scrubbed = message.to_owned();
        let mut secrets: Vec<String> = Vec::new();
        for range in secret_ranges(rest) {
            let written = &rest[range];
            let decoded = percent_encoding::percent_decode_str(written).decode_utf8_lossy();
            for secret in [written, decoded.as_ref()] {
                secrets.push(secret.to_owned());
                // libpq splits a typed URL at these, and may then quote one piece of a
                // password as a host, a port or a database (`m:pa/ss@…` → port "pa").
                secrets.extend(
                    secret
                        .split(['/', '@', '?', '#', ':', '&', '='])
                        .filter(|piece| piece.chars().count() >= 2)
                        .map(str::to_owned),
                );
            }
        }
        // The longest first, so no piece of a longer secret is left behind.
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        for secret in secrets.iter().filter(|s| !s.is_empty()) {
            scrubbed = scrubbed.replace(secret.as_str(), "***");
        }
        scrubbed
    }
}

/// Where passwords may be in a PostgreSQL URL after its `scheme://`: after the user name
/// (the user information ends at the last `@`; without a `:` in it, a user information with
/// `/`, `?` or `#` is taken whole), and the value of every `password=` that follows a `?` or
/// an `&` (its name percent-decoded, as libpq does). Typed URLs are not always valid ones (an
/// unencoded `/`, `?` or `@` in a password), so this errs towards hiding too much.
fn secret_ranges(rest: &str) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    if let Some(at) = rest.rfind('@') {
        let userinfo = &rest[..at];
        match userinfo.find(':') {
            Some(colon) => ranges.push(colon + 1..at),
            None if userinfo.contains(['/', '?', '#']) => ranges.push(0..at),
            None => {}
        }
    }
    for (separator, _) in rest.match_indices(['?', '&']) {
        let start = separator + 1;
        let end = rest[start..].find('&').map_or(rest.len(), |e| start + e);
        if let Some(eq) = rest[start..end].find('=') {
            let name =
                percent_encoding::percent_decode_str(&rest[start..start + eq]).decode_utf8_lossy();
            if name.eq_ignore_ascii_case("password") {
                ranges.push(start + eq + 1..end);
            }
        }
    }
    ranges.retain(|range| !range.is_empty());
    ranges
}

/// `postgres://user:secret@host/db?password=secret` → `postgres://user:***@host/db?password=***`
/// (every range `secret_ranges` finds, overlapping ones merged, becomes `***`).
fn redact_postgres(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let mut ranges = secret_ranges(rest);
    ranges.sort_by_key(|range| range.start);
    let mut merged: Vec<Range<usize>> = Vec::new();
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    let mut shown = format!("{scheme}://");
    let mut at = 0;
    for range in merged {
        shown.push_str(&rest[at..range.start]);
        shown.push_str("***");
        at = range.end;
    }
    shown.push_str(&rest[at..]);
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_of_a_password_that_libpq_quotes_are_scrubbed_too() {
        // Found by an attack: libpq read `pa` as a port and `ss@127.0.0.1` as a host.
        let url = DatabaseUrl::parse("postgres://m:pa/ss@127.0.0.1/test").unwrap();
        let shown = url.scrub(r#"invalid integer value "pa" for connection option "port""#);
        assert!(!shown.contains("\"pa\""), "{shown}");
        let url = DatabaseUrl::parse("postgres://m:p@ss@127.0.0.1:1/test").unwrap();
        let shown = url.scrub(r#"could not translate host name "ss@127.0.0.1" to address"#);
        assert!(!shown.contains("ss@"), "{shown}");
    }

    #[test]
    fn database_urls_are_shown_without_their_password() {
        let shown = |url: &str| DatabaseUrl::parse(url).unwrap().redacted();
        assert_eq!(
            shown("postgres://media:s3cret@db:5432/media?sslmode=require"),
            "postgres://media:***@db:5432/media?sslmode=require"
        );
        assert_eq!(
            shown("postgresql://db/media?user=m&password=s3cret"),
            "postgresql://db/media?user=m&password=***"
        );
        assert_eq!(
            shown("postgres://media@db/media"),
            "postgres://media@db/media"
        );
        assert_eq!(shown("postgres://a:b:c@db"), "postgres://a:***@db");
        assert_eq!(shown("sqlite://data/x.sqlite3"), "sqlite://data/x.sqlite3");
        // Unencoded `/`, `?` or `@` in a password (not a valid URL, but a typed one).
        assert_eq!(
            shown("postgres://m:pa/ss@db/media"),
            "postgres://m:***@db/media"
        );
        assert_eq!(
            shown("postgres://m:pa?ss@db/media"),
            "postgres://m:***@db/media"
        );
        assert_eq!(
            shown("postgres://m:p@ss@db/media"),
            "postgres://m:***@db/media"
        );
        assert_eq!(
            shown("postgres://db/media?password=p@ss/x"),
            "postgres://***"
        );
        assert_eq!(
            shown("postgres://db/media?ssl=1?password=x&user=m"),
            "postgres://db/media?ssl=1?password=***&user=m"
        );
        assert_eq!(
            shown("postgres://db/media?p%61ssword=x"),
            "postgres://db/media?p%61ssword=***"
        );
    }

    #[test]
    fn debug_of_a_database_url_is_redacted() {
        for (url, secret) in [
            ("postgres://media:Zq7-url-pw@db:5432/media", "Zq7-url-pw"),
            (
                "postgresql://db/media?user=m&password=Zq7-query-pw",
                "Zq7-query-pw",
            ),
            ("postgres://media:Zq7/slash@db/media", "Zq7/slash"),
        ] {
            let parsed = DatabaseUrl::parse(url).unwrap();
            for shown in [
                format!("{parsed:?}"),
                format!("{parsed:#?}"),
                parsed.redacted(),
            ] {
                assert!(!shown.contains(secret), "{shown}");
                assert!(
                    shown.contains("Postgres") || shown.starts_with("postgres"),
                    "{shown}"
                );
            }
        }
        let sqlite = DatabaseUrl::parse("sqlite://data/x.sqlite3").unwrap();
        assert_eq!(format!("{sqlite:?}"), "Sqlite(\"data/x.sqlite3\")");
    }

    #[test]
    fn messages_about_a_url_lose_its_passwords() {
        let url = DatabaseUrl::parse("postgres://m:Zq7%25pw@db/x?password=Zq7-other").unwrap();
        let message = "bad token \"Zq7%25pw\", decoded Zq7%pw, and Zq7-other";
        let scrubbed = url.scrub(message);
        assert!(!scrubbed.contains("Zq7"), "{scrubbed}");
        assert_eq!(scrubbed, "bad token \"***\", decoded ***, and ***");
        let sqlite = DatabaseUrl::parse("sqlite://x").unwrap();
        assert_eq!(sqlite.scrub(message), message);
    }
}
