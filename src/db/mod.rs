//! The database: a connection pool, the embedded migrations, and the bridge that runs diesel's
//! blocking calls off the async threads.

mod freshness;
pub mod models;
pub mod read_cache;
pub mod schema;
pub mod sql_types;

use std::sync::Arc;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{self, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use secrecy::ExposeSecret;

use crate::config::DatabaseUrl;

/// One connection type for both backends: every query is written once against it, and
/// diesel sends it to SQLite or PostgreSQL as the URL chose. Only the common subset of SQL
/// is available (no `ON CONFLICT`, for one), which keeps the schema and the queries portable.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// The backend of `DbConn`, for boxed queries.
pub type Backend = MultiBackend;
pub type Pooled = PooledConnection<Manager>;

/// The same migration names for both backends; only the SQL dialect may differ.
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// The audit file's page cache per connection (`Db::audit`).
const AUDIT_CACHE_KIB: u32 = 4096;
/// The audit log's own SQLite file (`Db::audit`); on PostgreSQL its table is in the main set.
const SQLITE_AUDIT_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite-audit");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
/// The advisory lock key that serialises migrations on PostgreSQL ("pm-migr" in ASCII).
const MIGRATION_LOCK: i64 = 0x0070_6d2d_6d69_6772;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the database: {0}")]
    Connect(String),
    #[error("the database is not available: {0}")]
    Pool(#[from] r2d2::PoolError),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database migrations failed: {0}")]
    Migration(String),
    #[error("the database task was cancelled")]
    Cancelled,
    #[error(
        "the database cannot be written to ({0}); check its permissions, or the database user's"
    )]
    ReadOnly(String),
}

impl DbError {
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            DbError::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, DbError::Query(diesel::result::Error::NotFound))
    }
}

/// Opens connections of the backend the URL names. diesel's own manager would try each
/// backend in turn with the same string; SQLite accepts any string as a path, so the choice
/// is made here, from the parsed URL.
#[derive(Debug, Clone)]
pub struct Manager {
    url: DatabaseUrl,
    /// SQLite's page cache per connection, in KiB, when not SQLite's default (2 MiB).
    sqlite_cache_kib: Option<u32>,
}

impl Manager {
    fn establish(&self) -> Result<DbConn, DbError> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let path = path.to_str().ok_or_else(|| {
                    DbError::Connect("the database path is not valid UTF-8".into())
                })?;
                let mut conn = SqliteConnection::establish(path)
                    .map_err(|e| DbError::Connect(format!("{path}: {e}")))?;
                // Per connection; `journal_mode` is persistent and set once in `connect`.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
                     PRAGMA synchronous = NORMAL;",
                )?;
                if let Some(kib) = self.sqlite_cache_kib {
                    conn.batch_execute(&format!("PRAGMA cache_size = -{kib};"))?;
                }
                Ok(DbConn::Sqlite(conn))
            }
            DatabaseUrl::Postgres(url) => PgConnection::establish(url.expose_secret())
                .map(DbConn::Postgres)
                // libpq's messages span lines; errors here are one line. The URL may carry a
                // password, so it is not repeated, and libpq's quotes of it lose the password.
                .map_err(|e| {
                    let message = e
                        .to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    DbError::Connect(format!("PostgreSQL: {}", self.url.scrub(&message)))
                }),
        }
    }
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        self.establish().map_err(|e| match e {
            DbError::Query(q) => r2d2::Error::QueryError(q),
            other => r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(
                other.to_string(),
            )),
        })
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConn) -> bool {
        conn.is_broken()
    }
}

#[derive(Clone)]
pub struct Db {
    pool: Pool<Manager>,
    url: DatabaseUrl,
    freshness: Arc<freshness::Freshness>,
    /// The audit log's SQLite file rather than the main database.
    audit_file: bool,
}

impl Db {
    /// Opens a pool of `size` connections. A SQLite file and its folder are created as needed,
    /// the file readable by its owner only (SQLite gives its -wal and -shm files the same mode).
    pub fn connect(url: &DatabaseUrl, size: u32) -> Result<Self, DbError> {
        Self::connect_with(url, size, None)
    }

    fn connect_with(
        url: &DatabaseUrl,
        size: u32,
        sqlite_cache_kib: Option<u32>,
    ) -> Result<Self, DbError> {
        if let DatabaseUrl::Sqlite(path) = url {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| DbError::Connect(format!("{}: {e}", parent.display())))?;
            }
            create_private_file(path)
                .map_err(|e| DbError::Connect(format!("{}: {e}", path.display())))?;
        }
        let manager = Manager {
            url: url.clone(),
            sqlite_cache_kib,
        };
        // One connection up front: a clear error for a bad path or an unreachable server.
        let mut first = manager.establish()?;
        if let DbConn::Sqlite(conn) = &mut first {
            // Switching a new database to WAL takes an exclusive lock, and SQLite answers
            // "locked" at once (no busy wait) while another starting instance holds one.
            let mut tries = 0;
            loop {
                match conn.batch_execute("PRAGMA journal_mode = WAL;") {
                    Ok(()) => break,
                    Err(e) if tries < 50 && e.to_string().contains("locked") => {
                        tries += 1;
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let pool = Pool::builder()
            .max_size(size)
            .connection_timeout(std::time::Duration::from_secs(10))
            .build(manager)?;
        let freshness = Arc::new(match url {
            DatabaseUrl::Sqlite(path) => freshness::Freshness::sqlite(path.clone()),
            DatabaseUrl::Postgres(_) => freshness::Freshness::postgres(url.clone()),
        });
        Ok(Self {
            pool,
            url: url.clone(),
            freshness,
            audit_file: false,
        })
    }

    /// Where the audit log is written: on PostgreSQL this database (its table has no NOTIFY
    /// trigger, so events drop no instance's cached reads); on SQLite a file of its own beside
    /// the main one, `NAME-audit.sqlite3`, because every commit to the main file drops the
    /// cached reads of every connection to it. Its migrations are run here.
    pub fn audit(&self, size: u32) -> Result<Db, DbError> {
        let DatabaseUrl::Sqlite(path) = &self.url else {
            return Ok(self.clone());
        };
        let audit = DatabaseUrl::Sqlite(audit_path(path));
        // Twice SQLite's default page cache: the table and its four indexes take ~30,000
        // inserts a second at 4 KiB downloads, and with 2 MiB their pages were read back
        // over and over (4 KiB downloads with the audit on: 0.71 of the rate with it off,
        // 0.87 with 4 MiB).
        let mut db = Db::connect_with(&audit, size, Some(AUDIT_CACHE_KIB))?;
        db.audit_file = true;
        db.run_migrations()?;
        Ok(db)
    }

    /// A write to tables the access cache never reads (the audit log, share link counts):
    /// unlike `run`, it leaves this instance's cached reads in place.
    pub async fn run_uncached<F, T>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        self.read(f).await
    }

    /// The in-process cache of the access check's reads (`read_cache.rs`).
    pub fn cache(&self) -> read_cache::ReadCache<'_> {
        read_cache::ReadCache::new(&self.freshness)
    }

    pub fn backend_name(&self) -> Result<&'static str, DbError> {
        Ok(match &*self.get()? {
            DbConn::Postgres(_) => "postgres",
            DbConn::Sqlite(_) => "sqlite",
        })
    }

    /// Runs pending migrations, then folds the search text and writes the type family of rows
    /// that have none; returns how many migrations ran.
    pub fn run_migrations(&self) -> Result<usize, DbError> {
        let mut conn = self.get()?;
        let migrations = if self.audit_file {
            SQLITE_AUDIT_MIGRATIONS
        } else {
            migrations_for(&conn)
        };
        // Instances starting together on one database take turns: an advisory lock on
        // PostgreSQL, a lock file beside a SQLite file (diesel reads what is pending before
        // it writes, so two starts could both run the first migration).
        let _file_lock = match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let mut lock_path = path.clone().into_os_string();
                lock_path.push(".migrations.lock");
                let lock = std::fs::File::create(&lock_path).map_err(|e| {
                    DbError::Migration(format!("{}: {e}", lock_path.to_string_lossy()))
                })?;
                lock.lock()
                    .map_err(|e| DbError::Migration(format!("cannot lock migrations: {e}")))?;
                Some(lock)
            }
            DatabaseUrl::Postgres(_) => None,
        };
        if let DbConn::Postgres(pg) = &mut *conn {
            pg.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))?;
        }
        let applied = conn
            .run_pending_migrations(migrations)
            .map(|applied| applied.len())
            .map_err(|e| DbError::Migration(e.to_string()))
            .and_then(|applied| {
                if self.audit_file {
                    return Ok(applied);
                }
                // The fold is Rust's, not SQL's, so rows from before `search_text` (or written
                // by hand) are folded here, still in turn with other starts.
                let folded = models::file::FileRow::fold_unfolded(&mut conn)?;
                if folded > 0 {
                    tracing::info!(folded, "search text of existing files folded");
                }
                let classified = models::file::FileRow::classify_untyped(&mut conn)?;
                if classified > 0 {
                    tracing::info!(classified, "type family of existing files written");
                }
                Ok(applied)
            });
        if let DbConn::Postgres(pg) = &mut *conn {
            pg.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))?;
        }
        applied
    }

    /// Fails when the database can be read but not written (a read-only file or mount, a
    /// read-only PostgreSQL user or replica), so that a start finds it rather than the first
    /// login. The probe row is rolled back.
    pub fn check_writable(&self) -> Result<(), DbError> {
        use diesel::result::Error as DieselError;
        let mut conn = self.get()?;
        let probe = conn.transaction::<(), DieselError, _>(|c| {
            diesel::insert_into(schema::login_failures::table)
                .values((
                    schema::login_failures::id.eq(crate::ids::random_id()),
                    schema::login_failures::username.eq(""),
                    schema::login_failures::cleared.eq(true),
                    schema::login_failures::failed_at.eq(chrono::Utc::now().naive_utc()),
                ))
                .execute(c)?;
            Err(DieselError::RollbackTransaction)
        });
        match probe {
            Ok(()) | Err(DieselError::RollbackTransaction) => Ok(()),
            Err(e) => Err(DbError::ReadOnly(e.to_string())),
        }
    }

    /// How many migrations an existing database has not run yet, over one connection of its
    /// own (no pool, nothing created, no journal mode set): it is closed before this returns,
    /// so a look at a SQLite database (`check`) leaves no -wal or -shm file behind, whereas a
    /// pool's connections may still be open when the process exits.
    pub fn pending_migrations_at(url: &DatabaseUrl) -> Result<usize, DbError> {
        let mut conn = Manager {
            url: url.clone(),
            sqlite_cache_kib: None,
        }
        .establish()?;
        let migrations = migrations_for(&conn);
        let pending = conn
            .pending_migrations(migrations)
            .map(|m| m.len())
            .map_err(|e| DbError::Migration(e.to_string()));
        drop(conn);
        pending
    }

    /// How many migrations have not run yet.
    pub fn pending_migrations(&self) -> Result<usize, DbError> {
        let mut conn = self.get()?;
        let migrations = migrations_for(&conn);
        conn.pending_migrations(migrations)
            .map(|m| m.len())
            .map_err(|e| DbError::Migration(e.to_string()))
    }

    /// A connection for synchronous callers (the CLI).
    pub fn get(&self) -> Result<Pooled, DbError> {
        Ok(self.pool.get()?)
    }

    /// Runs `f` with a connection on the blocking pool, so request threads never wait on I/O.
    pub async fn run<F, T>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let freshness = Arc::clone(&self.freshness);
        // tokio's blocking pool, the one actix-web's workers are built with (its
        // `worker_max_blocking_threads` bounds it), without naming the web framework here.
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            let result = f(&mut conn);
            // Whatever `f` wrote is committed now: cached reads made before it are dropped
            // before the caller answers (also when `f` failed half-way, or its caller left).
            freshness.bump();
            result
        })
        .await
        .map_err(|_| DbError::Cancelled)?
    }

    /// `run` for a closure that only reads: the cached reads stay valid. A closure given here
    /// that writes would leave other requests on this instance reading from before its write.
    pub async fn read<F, T>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut DbConn) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|_| DbError::Cancelled)?
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        self.read(|conn| {
            conn.batch_execute("SELECT 1")?;
            Ok(())
        })
        .await
    }
}

/// Creates an empty file with mode 0600 unless one exists (SQLite keeps a file it finds).
fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// `private-media.sqlite3` → `private-media-audit.sqlite3`, in the same folder.
pub fn audit_path(main: &std::path::Path) -> std::path::PathBuf {
    let stem = main
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "private-media".to_owned());
    main.with_file_name(format!("{stem}-audit.sqlite3"))
}

fn migrations_for(conn: &DbConn) -> EmbeddedMigrations {
    match conn {
        DbConn::Postgres(_) => POSTGRES_MIGRATIONS,
        DbConn::Sqlite(_) => SQLITE_MIGRATIONS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_postgres_connection_does_not_show_the_password() {
        // Port 1 on loopback: nothing listens there. libpq quotes a token it cannot decode.
        for (url, password) in [
            ("postgres://media:Zq7-pw@127.0.0.1:1/media", "Zq7-pw"),
            ("postgres://media:Zq7%zz-pw@127.0.0.1:1/media", "Zq7%zz-pw"),
            (
                "postgres://127.0.0.1:1/media?password=Zq7%zz-pw",
                "Zq7%zz-pw",
            ),
            ("postgres://media:Zq7 pw@127.0.0.1:1/media", "Zq7 pw"),
        ] {
            let parsed = DatabaseUrl::parse(url).expect("a postgres url");
            let Err(error) = Db::connect(&parsed, 1) else {
                panic!("connected to {url}");
            };
            let shown = format!("{error} {error:?}");
            assert!(shown.contains("PostgreSQL"), "{shown}");
            assert!(!shown.contains(password), "{shown}");
            assert!(!shown.contains("Zq7"), "{shown}");
        }
    }
}
