//! The log: to stderr, at the level `PRIVATE_MEDIA_LOG` asks for. A filter that does not parse
//! is an error rather than a silent fall back to the default, which would hide the logs that
//! were asked for.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub const LOG_VAR: &str = "PRIVATE_MEDIA_LOG";

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(
        "{LOG_VAR}: `{value}` is not a log filter ({problem}); use e.g. `debug` or `private_media=debug,actix_web=info`"
    )]
    Invalid { value: String, problem: String },
    #[error("{LOG_VAR} is not valid UTF-8")]
    NotUnicode,
}

/// The filter from `PRIVATE_MEDIA_LOG`, or `default_level` when it is unset or empty.
pub fn filter(default_level: &str) -> Result<EnvFilter, LogError> {
    let value = match std::env::var(LOG_VAR) {
        Ok(value) if !value.trim().is_empty() => value,
        Ok(_) | Err(std::env::VarError::NotPresent) => return Ok(EnvFilter::new(default_level)),
        Err(std::env::VarError::NotUnicode(_)) => return Err(LogError::NotUnicode),
    };
    parse(&value)
}

fn parse(value: &str) -> Result<EnvFilter, LogError> {
    EnvFilter::builder()
        .parse(value)
        .map_err(|e| LogError::Invalid {
            value: value.to_owned(),
            problem: e.to_string(),
        })
}

/// Installs the subscriber; logs go to stderr, in colour only on a terminal.
pub fn init(filter: EnvFilter) {
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_filters_parse() {
        for good in ["debug", "private_media=debug,actix_web=info", "warn"] {
            assert!(parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn bad_filters_are_errors_that_name_the_variable() {
        for bad in ["private_media=loud", "debug,=x[", "[{"] {
            let err = parse(bad).expect_err(bad).to_string();
            assert!(err.starts_with("PRIVATE_MEDIA_LOG: "), "{err}");
        }
    }
}
