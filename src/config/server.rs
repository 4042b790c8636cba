//! `[server]`: request-body timeouts and minimum rate, connection and request caps, trusted
//! proxies.

use std::time::Duration;

use super::ConfigError;
use super::raw::{OneOrMany, RawServer};
use crate::domain::TrustedProxies;

pub const DEFAULT_BODY_IDLE_SECS: u64 = 30;
pub const DEFAULT_BODY_MIN_RATE: u64 = 1024;
pub const DEFAULT_BODY_RATE_GRACE_SECS: u64 = 10;

/// How long a request body may take, and how many connections and requests are served at
/// once (`[server]`; README: "Security model", "Slow and surplus clients").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// A body that sends nothing for this long is answered 408.
    pub body_idle_timeout: Duration,
    /// After `body_rate_grace`, a body sending fewer bytes per second than this is answered
    /// 408 (bytes sent ahead count for at most `body_idle_timeout`); 0 turns the check off.
    pub body_min_rate: u64,
    pub body_rate_grace: Duration,
    /// Open connections; `None`: sized from the file-descriptor limit at start.
    pub max_connections: Option<usize>,
    /// Requests handled at once before new ones get 503; `None`: derived from the connections.
    pub max_requests: Option<usize>,
    /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: TrustedProxies,
}

impl RawServer {
    pub(super) fn validate(self) -> Result<ServerSettings, ConfigError> {
        let entries = self
            .trusted_proxies
            .map(OneOrMany::into_items)
            .unwrap_or_default();
        let trusted_proxies = TrustedProxies::parse(&entries)
            .map_err(|p| ConfigError::new("server.trusted_proxies", p))?;
        let seconds = |value: Option<u64>, default: u64, key: &str| match value.unwrap_or(default) {
            0 => Err(ConfigError::new(key, "must be at least 1 second")),
            n => Ok(Duration::from_secs(n)),
        };
        let at_least_one = |value: Option<usize>, key: &str| match value {
            Some(0) => Err(ConfigError::new(key, "must be at least 1")),
            other => Ok(other),
        };
        Ok(ServerSettings {
            body_idle_timeout: seconds(
                self.body_idle_timeout,
                DEFAULT_BODY_IDLE_SECS,
                "server.body_idle_timeout",
            )?,
            body_min_rate: self
                .body_min_rate
                .map_or(DEFAULT_BODY_MIN_RATE, |rate| rate.as_u64()),
            body_rate_grace: seconds(
                self.body_rate_grace,
                DEFAULT_BODY_RATE_GRACE_SECS,
                "server.body_rate_grace",
            )?,
            max_connections: at_least_one(self.max_connections, "server.max_connections")?,
            max_requests: at_least_one(self.max_requests, "server.max_requests")?,
            trusted_proxies,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml;

    #[test]
    fn server_limits_are_read_and_checked() {
        let s = from_toml(
            "[server]\nbody_idle_timeout = 5\nbody_min_rate = \"4KiB\"\nmax_connections = 100\nmax_requests = 80",
        )
        .unwrap();
        assert_eq!(s.server.body_idle_timeout, Duration::from_secs(5));
        assert_eq!(s.server.body_min_rate, 4096);
        assert_eq!(s.server.max_connections, Some(100));
        assert_eq!(s.server.max_requests, Some(80));
        for (toml, key) in [
            (
                "[server]\nbody_idle_timeout = 0",
                "server.body_idle_timeout",
            ),
            ("[server]\nmax_connections = 0", "server.max_connections"),
        ] {
            assert_eq!(from_toml(toml).unwrap_err().key, key, "{toml}");
        }
    }

    #[test]
    fn trusted_proxies_take_a_list_or_one_comma_separated_string() {
        let s = from_toml("[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]").unwrap();
        assert_eq!(
            s.server.trusted_proxies.to_string(),
            "127.0.0.1/32, 10.0.0.0/8"
        );
        let s = from_toml("[server]\ntrusted_proxies = \"127.0.0.1, ::1\"").unwrap();
        assert_eq!(
            s.server.trusted_proxies.to_string(),
            "127.0.0.1/32, ::1/128"
        );
        assert!(from_toml("").unwrap().server.trusted_proxies.is_empty());
    }
}
