//! `DATABASE_URL`: SQLite or PostgreSQL, and how it is shown without its password.

use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// The URL to show a person: a PostgreSQL password is replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => redact_postgres(url),
        }
    }

    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("`sqlite://` needs a file path, e.g. sqlite://data/db.sqlite3".into());
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else {
            Err("expected `sqlite://PATH` or `postgres://…`".into())
        }
    }
}

/// `postgres://user:secret@host/db?password=secret` → `postgres://user:***@host/db?password=***`.
fn redact_postgres(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
