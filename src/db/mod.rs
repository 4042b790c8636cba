//! The database: a connection pool, the embedded migrations, and the bridge that runs diesel's
//! blocking calls off the async threads.

pub mod models;
pub mod schema;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseUrl;

/// The connection type every query is written against.
pub type DbConn = SqliteConnection;
/// The backend of `DbConn`, for boxed queries.
pub type Backend = <DbConn as diesel::Connection>::Backend;
pub type Pooled = PooledConnection<ConnectionManager<DbConn>>;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot open the database: {0}")]
    Connect(String),
    #[error("the database is not available: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("database migrations failed: {0}")]
    Migration(String),
    #[error("the database task was cancelled")]
    Cancelled,
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

/// Per-connection SQLite settings; `journal_mode` is persistent and set once in `connect`.
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConn, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(
            "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

#[derive(Clone)]
pub struct Db {
    pool: Pool<ConnectionManager<DbConn>>,
}

impl Db {
    /// Opens a pool of `size` connections. The SQLite file and its folder are created as needed.
    pub fn connect(url: &DatabaseUrl, size: u32) -> Result<Self, DbError> {
        let path = match url {
            DatabaseUrl::Sqlite(path) => path,
            DatabaseUrl::Postgres(_) => {
                return Err(DbError::Connect(
                    "this build of private-media serves SQLite databases only \
                     (DATABASE_URL=sqlite://PATH)"
                        .into(),
                ));
            }
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| DbError::Connect(format!("{}: {e}", parent.display())))?;
        }
        let url = path
            .to_str()
            .ok_or_else(|| DbError::Connect("the database path is not valid UTF-8".into()))?;
        {
            // One connection up front: a clear error for a bad path, and WAL mode for the file.
            use diesel::Connection;
            let mut conn =
                DbConn::establish(url).map_err(|e| DbError::Connect(format!("{url}: {e}")))?;
            conn.batch_execute("PRAGMA journal_mode = WAL;")
                .map_err(|e| DbError::Connect(format!("{url}: {e}")))?;
        }
        let manager = ConnectionManager::<DbConn>::new(url);
        let pool = Pool::builder()
            .max_size(size)
            .connection_customizer(Box::new(SqlitePragmas))
            .build(manager)?;
        Ok(Self { pool })
    }

    /// Runs pending migrations; returns how many ran.
    pub fn run_migrations(&self) -> Result<usize, DbError> {
        let mut conn = self.get()?;
        let applied = conn
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map_err(|e| DbError::Migration(e.to_string()))?;
        Ok(applied.len())
    }

    /// How many migrations have not run yet.
    pub fn pending_migrations(&self) -> Result<usize, DbError> {
        let mut conn = self.get()?;
        conn.pending_migrations(SQLITE_MIGRATIONS)
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
        actix_web::web::block(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|_| DbError::Cancelled)?
    }

    pub async fn ping(&self) -> Result<(), DbError> {
        self.run(|conn| {
            conn.batch_execute("SELECT 1")?;
            Ok(())
        })
        .await
    }
}
