//! Keeping slow and surplus clients from taking the server down.
//!
//! actix-web times out request *headers* (5 s) but not bodies: a client that sends its
//! headers and then stalls, or trickles, holds its connection and file descriptor for ever,
//! without logging in (`POST /login` reads a body). Three bounds stop that:
//!
//! - `body`: every request body fails when no byte arrives for `body_idle_timeout`, or when,
//!   after `body_rate_grace`, it has averaged less than `body_min_rate`; the answer is 408 and
//!   the connection is closed.
//! - `max_connections` (actix-web stops accepting past it), sized from the file-descriptor
//!   limit so the process never runs out of descriptors for files and the database.
//! - `gate`: past `max_requests` requests at once, new ones get 503 with `Retry-After` at
//!   once instead of queueing; `/healthz` is always let through, so monitoring still sees
//!   the instance.

pub mod body;
mod fds;
pub mod gate;

use crate::config::ServerSettings;

pub use body::BodyPolicy;
pub use gate::Gate;

/// Descriptors kept back from connections: listeners, the database pool and its journal,
/// logs, the blocking pool's open files, S3 clients.
const RESERVED_FDS: u64 = 64;
/// Each connection holds its socket, one duplicate of it (the download watchdog and sendfile
/// share it: delivery/body.rs), and may hold the file it is downloading.
const FDS_PER_CONNECTION: u64 = 3;
/// Fewest connections we size for, whatever the limit says.
const MIN_CONNECTIONS: usize = 16;

/// The bounds one server runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub body: BodyPolicy,
    /// Connections over all workers.
    pub max_connections: usize,
    /// Requests handled at once; always below `max_connections`, so a 503 (and `/healthz`)
    /// still finds a connection slot.
    pub max_requests: usize,
}

impl Limits {
    pub fn from_settings(settings: &ServerSettings) -> Self {
        let max_connections = settings
            .max_connections
            .unwrap_or_else(|| connections_for(fds::open_file_limit()));
        let max_requests = settings
            .max_requests
            .unwrap_or_else(|| requests_for(max_connections));
        Self {
            body: BodyPolicy::from_settings(settings),
            max_connections,
            max_requests,
        }
    }

    /// actix-web counts connections per worker.
    pub fn connections_per_worker(&self, workers: usize) -> usize {
        self.max_connections.div_ceil(workers.max(1)).max(1)
    }
}

/// How many connections a file-descriptor limit leaves room for.
fn connections_for(fd_limit: Option<u64>) -> usize {
    match fd_limit {
        Some(limit) => {
            let room = limit.saturating_sub(RESERVED_FDS) / FDS_PER_CONNECTION;
            usize::try_from(room)
                .unwrap_or(usize::MAX)
                .max(MIN_CONNECTIONS)
        }
        // No limit to go by (not Unix, or unlimited): actix-web's own per-worker default.
        None => 25_000,
    }
}

/// Requests at once for a number of connections: an eighth of them (at least 8) stay free
/// for answering 503s and health checks.
fn requests_for(connections: usize) -> usize {
    let spare = (connections / 8).max(8);
    connections.saturating_sub(spare).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_room_for_files_and_the_database() {
        assert_eq!(connections_for(Some(256)), 64);
        assert_eq!(connections_for(Some(1024)), 320);
        assert_eq!(connections_for(Some(65_536)), 21_824);
        assert_eq!(connections_for(Some(10)), MIN_CONNECTIONS);
        assert_eq!(connections_for(None), 25_000);
    }

    #[test]
    fn some_connections_always_stay_free_for_503s_and_health_checks() {
        assert_eq!(requests_for(96), 84);
        assert_eq!(requests_for(480), 420);
        assert_eq!(requests_for(16), 8);
        assert_eq!(requests_for(1), 1);
    }

    #[test]
    fn configured_limits_win_over_the_descriptor_limit() {
        let settings = ServerSettings {
            body_idle_timeout: std::time::Duration::from_secs(30),
            body_min_rate: 1024,
            body_rate_grace: std::time::Duration::from_secs(10),
            max_connections: Some(100),
            max_requests: Some(20),
            trusted_proxies: Default::default(),
        };
        let limits = Limits::from_settings(&settings);
        assert_eq!((limits.max_connections, limits.max_requests), (100, 20));
        assert_eq!(limits.connections_per_worker(2), 50);
        assert_eq!(limits.connections_per_worker(3), 34);
        assert_eq!(limits.connections_per_worker(0), 100);
    }
}
