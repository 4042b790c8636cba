//! Whether what this instance read from the database a moment ago is still what the database
//! holds: the version that `read_cache` entries are tagged with. Reads made at one version are
//! used only while the version is unchanged; anything that might change what the access check
//! reads changes the version first.
//!
//! - Changes made through this instance: every `Db::run` (which may write) bumps the local
//!   generation when its closure returns, before the request that made the change is answered.
//!   Reads that cannot write go through `Db::read`, which leaves it alone.
//! - SQLite, other processes (a second instance on the same file, `private-media user …`):
//!   `PRAGMA data_version` on a connection of each worker thread's own, which SQLite changes
//!   whenever any other connection commits. Exact, at the very next request.
//! - PostgreSQL, other instances: a watcher thread LISTENs on the channel the triggers of the
//!   `notify_access_changes` migration notify at commit, and bumps the generation. Each
//!   round trip it completes vouches for the cache for `VOUCH_FOR` from when it was sent;
//!   without one (connection down or stalled, watcher stuck), no version is given out and
//!   every request reads the database; when it is back, the generation is bumped (whatever
//!   was missed is dropped).

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use secrecy::ExposeSecret;

use crate::config::DatabaseUrl;

/// The channel the PostgreSQL triggers notify.
pub const CHANNEL: &str = "private_media_access";
/// The watcher connection's `application_name`.
pub const WATCHER_NAME: &str = "private-media-watch";
/// How often the watcher looks for notifications between heartbeats.
const POLL: Duration = Duration::from_millis(5);
/// How often the watcher makes a round trip to the database (a `SELECT 1`).
const HEARTBEAT: Duration = Duration::from_millis(40);
/// How long a completed round trip vouches for the cache, counted from when it was sent: a
/// change committed before that moment was notified before its answer came back, and was
/// applied before the watcher vouched. So a cached answer is never older than the last
/// change by more than this, whatever the network does (a stalled connection stops the
/// cache `VOUCH_FOR` after its last good round trip). The README states it as "within
/// 250 ms".
const VOUCH_FOR: Duration = Duration::from_millis(150);
/// Wait between attempts to bring a lost watcher connection back.
const RECONNECT: Duration = Duration::from_millis(500);

/// A point in the database's history, as far as this instance can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    generation: u64,
    data_version: i64,
}

pub struct Freshness {
    /// Tells this instance's per-thread state apart from another's (tests run many in one
    /// process).
    id: u64,
    shared: Arc<Shared>,
    source: Source,
}

enum Source {
    Sqlite(PathBuf),
    /// The watcher starts with the first request that asks (commands never do).
    Postgres {
        url: DatabaseUrl,
        started: Once,
    },
}

/// What the PostgreSQL watcher thread shares with the requests.
struct Shared {
    generation: AtomicU64,
    /// Milliseconds since `epoch` until which the watcher's last heartbeat vouches; 0 while
    /// it is down.
    healthy_until: AtomicU64,
    epoch: Instant,
    stop: AtomicBool,
}

impl Shared {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            generation: AtomicU64::new(0),
            healthy_until: AtomicU64::new(0),
            epoch: Instant::now(),
            stop: AtomicBool::new(false),
        })
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// Each worker thread's read-only SQLite connection for `PRAGMA data_version`, by
    /// `Freshness::id`.
    static CHECKERS: RefCell<HashMap<u64, Checker, foldhash::fast::RandomState>> =
        RefCell::new(HashMap::default());
}

/// Bytes of the WAL-index header at the start of the `-shm` file: two copies of 48 bytes
/// (sqlite.org/walformat.html, "The WAL-Index Header").
const WAL_INDEX_HEADER: usize = 48;

/// One worker thread's way to tell whether the SQLite database changed.
///
/// `PRAGMA data_version` is exact but costs a read transaction (two lock calls on the
/// `-shm` file, a statement) per request. SQLite itself decides whether its page cache is
/// still good by comparing the WAL-index header, which every commit rewrites (its change
/// counter, frame count and checksums); reading that header (one `pread`) and finding it
/// identical to the one read before the last `PRAGMA data_version` means no commit has
/// happened since, so that answer still holds. Any difference, a header caught mid-write (its
/// two copies differ) or no `-shm` file at all runs the `PRAGMA` again. The checker's own
/// connection stays open, so the database cannot leave WAL mode or drop its `-shm` file
/// under it.
struct Checker {
    conn: SqliteConnection,
    shm: Option<std::fs::File>,
    /// The WAL-index header read just before the last `PRAGMA data_version`, and its answer.
    seen: Option<([u8; WAL_INDEX_HEADER], i64)>,
}

impl Checker {
    fn data_version(&mut self) -> diesel::QueryResult<i64> {
        let header = self.shm.as_ref().and_then(wal_index_header);
        if let (Some(header), Some((seen, version))) = (header, self.seen)
            && header == seen
        {
            return Ok(version);
        }
        let version = diesel::sql_query("PRAGMA data_version")
            .get_result::<DataVersion>(&mut self.conn)?
            .data_version;
        self.seen = header.map(|header| (header, version));
        Ok(version)
    }
}

/// The WAL-index header, if both of its copies agree and it is initialised (SQLite's own
/// lock-free read: a writer rewrites the second copy, then the first).
fn wal_index_header(shm: &std::fs::File) -> Option<[u8; WAL_INDEX_HEADER]> {
    use std::os::unix::fs::FileExt;
    let mut both = [0u8; 2 * WAL_INDEX_HEADER];
    shm.read_exact_at(&mut both, 0).ok()?;
    let (first, second) = both.split_at(WAL_INDEX_HEADER);
    // Byte 12 is `isInit`.
    if first != second || first[12] == 0 {
        return None;
    }
    first.try_into().ok()
}

#[derive(QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    data_version: i64,
}

impl Freshness {
    pub fn sqlite(path: PathBuf) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shared: Shared::new(),
            source: Source::Sqlite(path),
        }
    }

    /// `url` is a PostgreSQL URL.
    pub fn postgres(url: DatabaseUrl) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            shared: Shared::new(),
            source: Source::Postgres {
                url,
                started: Once::new(),
            },
        }
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    /// Something this instance did may have changed what the access check reads.
    pub fn bump(&self) {
        self.shared.bump();
    }

    /// The current version, or `None` when this instance cannot tell (then read the database).
    pub fn current(&self) -> Option<Version> {
        let data_version = match &self.source {
            Source::Sqlite(path) => self.sqlite_data_version(path)?,
            Source::Postgres { url, started } => {
                started.call_once(|| start_watcher(url.clone(), Arc::clone(&self.shared)));
                let shared = &self.shared;
                let now = u64::try_from(shared.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
                if now >= shared.healthy_until.load(Ordering::SeqCst) {
                    return None;
                }
                0
            }
        };
        // Read after the health check: a bump made when the watcher came back is seen.
        let generation = self.shared.generation.load(Ordering::SeqCst);
        Some(Version {
            generation,
            data_version,
        })
    }

    fn sqlite_data_version(&self, path: &std::path::Path) -> Option<i64> {
        CHECKERS.with(|checkers| {
            let mut checkers = checkers.borrow_mut();
            if let std::collections::hash_map::Entry::Vacant(slot) = checkers.entry(self.id) {
                slot.insert(open_checker(path)?);
            }
            let checker = checkers.get_mut(&self.id)?;
            match checker.data_version() {
                Ok(version) => Some(version),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read SQLite's data_version; reading uncached");
                    checkers.remove(&self.id);
                    None
                }
            }
        })
    }
}

impl Drop for Freshness {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

fn start_watcher(url: DatabaseUrl, shared: Arc<Shared>) {
    let spawned = std::thread::Builder::new()
        .name("pg-access-watch".into())
        .spawn(move || watch_postgres(&url, &shared));
    if let Err(e) = spawned {
        // Without a watcher no version is ever given out: correct, only uncached.
        tracing::error!(error = %e, "cannot start the PostgreSQL change watcher");
    }
}

fn open_checker(path: &std::path::Path) -> Option<Checker> {
    use diesel::connection::SimpleConnection;
    let mut conn = SqliteConnection::establish(path.to_str()?).ok()?;
    // No busy wait: it would block a worker thread; a busy answer reads uncached instead.
    conn.batch_execute("PRAGMA query_only = 1; PRAGMA busy_timeout = 0;")
        .ok()?;
    // Opened only once the connection has read (and so made or joined the WAL index).
    diesel::sql_query("PRAGMA data_version")
        .get_result::<DataVersion>(&mut conn)
        .ok()?;
    let mut shm_path = path.as_os_str().to_owned();
    shm_path.push("-shm");
    let shm = std::fs::File::open(shm_path).ok();
    Some(Checker {
        conn,
        shm,
        seen: None,
    })
}

fn watch_postgres(url: &DatabaseUrl, shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        match connect(url) {
            Ok(mut conn) => {
                if let Err(e) = listen(&mut conn, shared) {
                    let message = url.scrub(&e.to_string());
                    tracing::warn!(error = %message, "the PostgreSQL change watcher lost its connection; reading uncached until it is back");
                }
            }
            Err(e) => {
                let message = e
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                tracing::warn!(error = %message, "the PostgreSQL change watcher cannot connect; reading uncached");
            }
        }
        shared.healthy_until.store(0, Ordering::SeqCst);
        std::thread::sleep(RECONNECT);
    }
}

/// The watcher's connection, named so that an operator (and the tests) can tell it apart.
fn connect(url: &DatabaseUrl) -> Result<PgConnection, diesel::ConnectionError> {
    let DatabaseUrl::Postgres(url) = url else {
        return Err(diesel::ConnectionError::InvalidConnectionUrl(
            "the change watcher needs a PostgreSQL URL".into(),
        ));
    };
    let url = url.expose_secret();
    // A `?` in a typed password is not a query string: look after the user information.
    let after_userinfo = url.rfind('@').map_or(url, |at| &url[at..]);
    let separator = if after_userinfo.contains('?') {
        '&'
    } else {
        '?'
    };
    // A dead network is noticed in seconds, not TCP's minutes: the cache is off meanwhile
    // (the vouch runs out), and the watcher reconnects sooner.
    PgConnection::establish(&format!(
        "{url}{separator}application_name={WATCHER_NAME}&connect_timeout=5&keepalives=1\
         &keepalives_idle=5&keepalives_interval=2&keepalives_count=3&tcp_user_timeout=5000"
    ))
}

/// Listens until the connection fails or the instance is gone.
fn listen(conn: &mut PgConnection, shared: &Shared) -> Result<(), diesel::result::Error> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    // Whatever changed while no one listened is dropped from every cache.
    shared.bump();
    let mut last_heartbeat: Option<Instant> = None;
    while !shared.stop.load(Ordering::SeqCst) {
        let sent = Instant::now();
        let heartbeat_due = last_heartbeat.is_none_or(|at| sent.duration_since(at) >= HEARTBEAT);
        if heartbeat_due {
            // PostgreSQL sends a listener the notifications of every commit before it was sent
            // ahead of this answer (before its ReadyForQuery).
            conn.batch_execute("SELECT 1")?;
            last_heartbeat = Some(sent);
        }
        let mut changed = false;
        for notification in conn.notifications_iter() {
            notification?;
            changed = true;
        }
        if changed {
            shared.bump();
        }
        // After the bump: a request that sees this vouch also sees the new generation.
        if heartbeat_due {
            vouch(shared, sent);
        }
        std::thread::sleep(POLL);
    }
    Ok(())
}

fn vouch(shared: &Shared, round_trip_sent: Instant) {
    let until = (round_trip_sent + VOUCH_FOR).duration_since(shared.epoch);
    let until = u64::try_from(until.as_millis()).unwrap_or(u64::MAX);
    shared.healthy_until.store(until, Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;

    /// A database in WAL mode with one table, and a connection that writes to it.
    fn wal_database(dir: &tempfile::TempDir) -> (PathBuf, SqliteConnection) {
        let path = dir.path().join("db.sqlite3");
        let mut writer = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        writer
            .batch_execute("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);")
            .unwrap();
        (path, writer)
    }

    #[test]
    fn a_sqlite_version_moves_with_every_commit_of_another_connection_and_every_bump() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut writer) = wal_database(&dir);
        let freshness = Freshness::sqlite(path);
        let first = freshness.current().unwrap();
        assert_eq!(freshness.current(), Some(first), "nothing changed");
        writer.batch_execute("INSERT INTO t VALUES (1)").unwrap();
        let second = freshness.current().unwrap();
        assert_ne!(second, first, "another connection committed");
        freshness.bump();
        assert_ne!(
            freshness.current().unwrap(),
            second,
            "this instance changed something"
        );
    }

    #[test]
    fn the_wal_index_header_answers_for_unchanged_data_and_every_commit_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut writer) = wal_database(&dir);
        let mut checker = open_checker(&path).unwrap();
        let mut last = checker.data_version().unwrap();
        assert!(checker.shm.is_some(), "the -shm file is open");
        assert!(checker.seen.is_some(), "its header was read");
        for round in 0..300 {
            assert_eq!(checker.data_version().unwrap(), last, "nothing changed");
            // Commits, checkpoints that restart the WAL, and both at once.
            let change = match round % 3 {
                0 => "INSERT INTO t VALUES (1)",
                1 => "INSERT INTO t VALUES (2); PRAGMA wal_checkpoint(TRUNCATE);",
                _ => "PRAGMA wal_checkpoint(TRUNCATE); UPDATE t SET x = x + 1;",
            };
            writer.batch_execute(change).unwrap();
            let now = checker.data_version().unwrap();
            assert_ne!(now, last, "round {round}: {change} went unseen");
            assert!(
                checker.seen.is_some(),
                "round {round}: the header was not readable"
            );
            last = now;
        }
    }

    #[test]
    fn a_torn_or_missing_header_is_never_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let shm = dir.path().join("x-shm");
        let mut header = vec![0u8; 2 * WAL_INDEX_HEADER];
        header[12] = 1;
        header[WAL_INDEX_HEADER + 12] = 1;
        std::fs::write(&shm, &header).unwrap();
        assert!(wal_index_header(&std::fs::File::open(&shm).unwrap()).is_some());
        // The two copies differ: a writer is between them.
        header[WAL_INDEX_HEADER + 8] = 7;
        std::fs::write(&shm, &header).unwrap();
        assert!(wal_index_header(&std::fs::File::open(&shm).unwrap()).is_none());
        // Not initialised.
        std::fs::write(&shm, vec![0u8; 2 * WAL_INDEX_HEADER]).unwrap();
        assert!(wal_index_header(&std::fs::File::open(&shm).unwrap()).is_none());
        // Too short.
        std::fs::write(&shm, [1u8; 20]).unwrap();
        assert!(wal_index_header(&std::fs::File::open(&shm).unwrap()).is_none());
    }

    #[test]
    fn a_postgres_version_is_given_out_only_while_the_watcher_vouches() {
        let url = DatabaseUrl::parse("postgres://nobody@127.0.0.1:1/none").unwrap();
        let freshness = Freshness::postgres(url);
        // Its watcher cannot connect: the cache is never used.
        assert_eq!(freshness.current(), None);
        // Past its first failed attempt (the next is `RECONNECT` away), vouch by hand.
        std::thread::sleep(Duration::from_millis(100));
        vouch(&freshness.shared, Instant::now());
        assert!(freshness.current().is_some());
        // A round trip sent longer ago than `VOUCH_FOR` vouches for nothing.
        std::thread::sleep(VOUCH_FOR + Duration::from_millis(20));
        assert_eq!(freshness.current(), None);
    }
}
