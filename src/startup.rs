//! Building the application from `Settings`: the same function serves `private-media serve`
//! and the integration tests (which bind 127.0.0.1:0 and read the port back).

use std::net::TcpListener;
use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_web::body::MessageBody;
use actix_web::cookie::{Key, SameSite, time::Duration as CookieDuration};
use actix_web::dev::{Server, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{
    Condition, DefaultHeaders, ErrorHandlerResponse, ErrorHandlers, from_fn,
};
use actix_web::{App, HttpServer, web};
use secrecy::ExposeSecret;

use crate::audit;
use crate::auth::csrf;
use crate::auth::session::SESSION_MAX_AGE_SECS;
use crate::auth::throttle::{LoginThrottle, ThrottlePolicy};
use crate::config::{SecretKey, Settings};
use crate::db::{Db, DbError};
use crate::error::{AppError, ErrorPage};
use crate::limits::{self, Gate, Limits};
use crate::secret::{self, SecretError};
use crate::share_tally::ShareTally;
use crate::state::AppState;
use crate::storage::{StorageError, Storages};

/// Connections per instance: enough to overlap requests, few enough that SQLite's single
/// writer is not fought over and the blocking pool stays small (README: Performance).
const DB_POOL_SIZE: u32 = 4;
/// The audit database's pool on SQLite (its own file): the writer, page reads and pruning.
const AUDIT_POOL_SIZE: u32 = 2;
const MAX_BLOCKING_THREADS: usize = 16;
pub const SESSION_COOKIE: &str = "private_media_session";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// Everything a running app needs, ready before the first request: data dir, secret key,
/// a migrated database.
pub struct Prepared {
    pub settings: Arc<Settings>,
    /// How many migrations this start applied.
    pub applied_migrations: usize,
    pub secret: SecretKey,
    pub db: Db,
    /// Where the audit log is written (`Db::audit`).
    pub audit_db: Db,
    pub storages: Storages,
}

/// For `serve` (and the tests' apps): the data dir, the secret key (created on the first
/// start), the database (`open_database`), then the storages (opening a local folder creates
/// it and sweeps the temp files of stopped instances).
pub fn prepare(settings: Settings) -> Result<Prepared, StartupError> {
    create_data_dir(&settings)?;
    let secret = secret::load_or_create(&settings)?;
    let OpenDatabase {
        db,
        applied_migrations,
    } = open_database(&settings)?;
    let audit_db = db.audit(AUDIT_POOL_SIZE)?;
    let storages = Storages::from_settings(&settings)?;
    Ok(Prepared {
        settings: Arc::new(settings),
        applied_migrations,
        secret,
        db,
        audit_db,
        storages,
    })
}

/// A migrated database, and how many migrations opening it applied.
pub struct OpenDatabase {
    pub db: Db,
    pub applied_migrations: usize,
}

/// The database alone, for `migrate` and the `user` commands: the data dir (where the SQLite
/// file lives by default), a connection pool, pending migrations run, the write probe. No
/// secret key is read or created and no storage is opened: a command that manages the
/// database leaves the files, and what a start sweeps, alone.
pub fn open_database(settings: &Settings) -> Result<OpenDatabase, StartupError> {
    create_data_dir(settings)?;
    let db = Db::connect(&settings.database, DB_POOL_SIZE)?;
    let applied_migrations = db.run_migrations()?;
    if applied_migrations > 0 {
        tracing::info!(applied = applied_migrations, "database migrations applied");
    }
    db.check_writable()?;
    Ok(OpenDatabase {
        db,
        applied_migrations,
    })
}

fn create_data_dir(settings: &Settings) -> Result<(), StartupError> {
    create_private_dir(&settings.data_dir).map_err(|source| StartupError::DataDir {
        path: settings.data_dir.display().to_string(),
        source,
    })
}

/// The data dir holds the database, the secret key and the files: folders it creates are
/// for the app's user alone (an existing folder keeps the mode it has).
fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

/// Why the configuration would keep browsers from logging in, if it would: the app speaks
/// plain HTTP, and a `Secure` cookie is never sent back over plain HTTP, so a non-loopback
/// address with secure cookies works only behind an HTTPS proxy.
pub fn plain_http_warning(settings: &Settings) -> Option<String> {
    if !settings.cookies_secure() || settings.bind.ip().is_loopback() {
        return None;
    }
    let behind = if settings.server.trusted_proxies.is_empty() {
        "no [server] trusted_proxies are set, so "
    } else {
        ""
    };
    Some(format!(
        "serving plain HTTP on {} with Secure session cookies: browsers can log in only through \
         an HTTPS proxy in front of the app ({behind}a browser that reaches this address \
         directly will not send the cookie back); set secure_cookies = false only for a \
         plain-HTTP test setup",
        settings.bind
    ))
}

pub struct Application {
    port: u16,
    server: Server,
    storages: Storages,
    db: Db,
    share_tally: Arc<ShareTally>,
    audit_db: Db,
    audit_writer: audit::Writer,
    audit_stopper: audit::Stopper,
    retention_days: Option<u32>,
}

impl Application {
    pub fn build(prepared: Prepared) -> Result<Self, StartupError> {
        let addr = prepared.settings.bind;
        let listener = TcpListener::bind(addr).map_err(|source| StartupError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: addr.to_string(),
                source,
            })?
            .port();
        let storages = prepared.storages.clone();
        let db = prepared.db.clone();
        let audit_db = prepared.audit_db.clone();
        let retention_days = prepared.settings.audit.retention_days;
        let share_tally = Arc::new(ShareTally::default());
        let (recorder, audit_writer, audit_stopper) =
            audit::channel(audit_db.clone(), prepared.settings.audit.enabled);
        let server =
            run(prepared, listener, Arc::clone(&share_tally), recorder).map_err(|source| {
                StartupError::Bind {
                    addr: addr.to_string(),
                    source,
                }
            })?;
        Ok(Self {
            port,
            server,
            storages,
            db,
            share_tally,
            audit_db,
            audit_writer,
            audit_stopper,
            retention_days,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        // Leftovers of uploads cut short by a crash, in the background: serving starts now
        // (their keys are reserved, so nothing of theirs is served meanwhile).
        let storages = self.storages.clone();
        let db = self.db.clone();
        tokio::spawn(async move {
            storages.sweep_leftovers().await;
            crate::upload::reconcile_interrupted(&db, &storages).await;
        });
        let counting = tokio::spawn(Arc::clone(&self.share_tally).keep_writing(self.db.clone()));
        let writing = tokio::spawn(self.audit_writer.run());
        let pruning = self
            .retention_days
            .map(|days| tokio::spawn(audit::keep_pruning(self.audit_db.clone(), days)));
        let served = self.server.await;
        // Stopped (SIGTERM, SIGINT), every request answered: what they queued is written, and
        // the share downloads counted since the last write.
        self.audit_stopper.stop();
        if writing.await.is_err() {
            tracing::error!("the audit writer failed at the stop");
        }
        if let Some(pruning) = pruning {
            pruning.abort();
        }
        counting.abort();
        if let Err(e) = self.share_tally.flush(&self.db).await {
            tracing::error!(error = %e, "writing the last share link download counts failed");
        }
        served
    }
}

/// The policy of every page. Previews on the file's page load the download route, which may
/// redirect to a storage's presigned URL: those origins are allowed for images, media and the
/// PDF frame, nothing else.
fn page_csp(direct_origins: &[String]) -> String {
    let elsewhere: String = direct_origins.iter().map(|o| format!(" {o}")).collect();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{elsewhere}; \
         media-src 'self'{elsewhere}; frame-src 'self'{elsewhere}; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

fn security_headers(csp: &str) -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::CONTENT_SECURITY_POLICY, csp))
}

/// Error responses that carry no page of their own (a 405 from routing, a 413 from a body
/// limit) get the HTML error page, keeping their status and headers.
fn html_error_page<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    if res.response().headers().contains_key(header::CONTENT_TYPE) {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let (req, original) = res.into_parts();
    let mut page = ErrorPage::for_status(original.status(), None).into_response();
    for (name, value) in original.headers() {
        if name != header::CONTENT_LENGTH && name != header::CONTENT_TYPE {
            page.headers_mut().insert(name.clone(), value.clone());
        }
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, page).map_into_right_body(),
    ))
}

fn run(
    prepared: Prepared,
    listener: TcpListener,
    share_tally: Arc<ShareTally>,
    audit: audit::Audit,
) -> std::io::Result<Server> {
    let Prepared {
        settings,
        applied_migrations: _,
        secret,
        db,
        audit_db,
        storages,
    } = prepared;
    let key = Key::derive_from(secret.expose_secret().as_bytes());
    let secure = settings.cookies_secure();
    let csp = page_csp(&storages.direct_origins());
    let state = web::Data::new(AppState {
        settings: Arc::clone(&settings),
        db,
        throttle: LoginThrottle::new(ThrottlePolicy::default()),
        token_throttle: Default::default(),
        storages,
        share_tally,
        audit,
        audit_db,
        thumbnailer: crate::thumbnails::Thumbnailer::from_settings(&settings),
    });
    let limits = Limits::from_settings(&settings.server);
    crate::delivery::set_pressure_threshold(limits.max_connections / 2);
    let gate = Gate::new(limits.max_requests);
    let body_policy = limits.body;
    // actix-web's default, made explicit: its connection limit is per worker.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    tracing::info!(
        max_connections = limits.max_connections,
        max_requests = limits.max_requests,
        "connection limits"
    );
    let access_log = crate::access_log::enabled();
    let trusted_proxies = Arc::new(settings.server.trusted_proxies.clone());
    let server = HttpServer::new(move || {
        let gate = gate.clone();
        let session = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
            .cookie_name(SESSION_COOKIE.to_owned())
            .cookie_secure(secure)
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(
                PersistentSession::default()
                    .session_ttl(CookieDuration::seconds(SESSION_MAX_AGE_SECS)),
            )
            .build();
        App::new()
            .app_data(state.clone())
            .app_data(
                web::FormConfig::default()
                    .limit(csrf::MAX_FORM_BYTES)
                    .error_handler(|e, _| AppError::BadRequest(e.to_string()).into()),
            )
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|e, _| AppError::BadRequest(e.to_string()).into()),
            )
            .app_data(web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()))
            // Order matters: the last `wrap` runs first. CSRF needs the session.
            .wrap(from_fn(csrf::protect))
            // Outside CSRF, which reads form bodies.
            .wrap(from_fn(move |req, next| {
                limits::body::bound(body_policy, req, next)
            }))
            // Inside the session, which it reads; outside CSRF and the body limits, whose
            // refusals it shows with the navigation too.
            .wrap(from_fn(crate::error_pages::with_navigation))
            .wrap(session)
            .wrap(
                ErrorHandlers::new()
                    .default_handler_client(html_error_page)
                    .default_handler_server(html_error_page),
            )
            // Before sessions are decrypted: a refused request costs next to nothing.
            .wrap(from_fn(move |req, next| {
                limits::gate::admit(gate.clone(), req, next)
            }))
            // Outside everything that reads the session or makes pages: `/api/` answers only
            // to tokens and only in JSON.
            .wrap(from_fn(crate::routes::api::guard))
            .wrap(from_fn(crate::cache_control::apply))
            .wrap(security_headers(&csp))
            .wrap(Condition::new(access_log, {
                let trusted = Arc::clone(&trusted_proxies);
                from_fn(move |req, next| crate::access_log::record(Arc::clone(&trusted), req, next))
            }))
            .configure(crate::routes::configure)
            .default_service(web::to(crate::routes::not_found))
    })
    // The socket of each connection, for the send timeout of downloads (delivery/body.rs).
    .on_connect(|connection, extensions| {
        if let Some(socket) = connection
            .downcast_ref::<actix_web::rt::net::TcpStream>()
            .and_then(crate::delivery::ConnectionSocket::of)
        {
            extensions.insert(socket);
        }
    })
    // actix leaves Nagle on; small responses would wait for a delayed ACK (README: Performance).
    .tcp_nodelay(true)
    .worker_max_blocking_threads(MAX_BLOCKING_THREADS)
    .workers(workers)
    .max_connections(limits.connections_per_worker(workers))
    .listen(listener)?
    .run();
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(bind: &str, secure: Option<bool>) -> Settings {
        let mut s = Settings::for_data_dir(std::path::Path::new("data")).expect("defaults");
        s.set_bind(bind).expect("bind");
        s.secure_cookies = secure;
        s
    }

    #[test]
    fn plain_http_on_a_public_address_with_secure_cookies_is_warned_about() {
        let warning = plain_http_warning(&settings("0.0.0.0:8000", None)).expect("a warning");
        assert!(warning.contains("0.0.0.0:8000"), "{warning}");
        assert!(warning.contains("trusted_proxies"), "{warning}");
        assert!(plain_http_warning(&settings("127.0.0.1:8000", None)).is_none());
        assert!(plain_http_warning(&settings("127.0.0.1:8000", Some(true))).is_none());
        assert!(plain_http_warning(&settings("0.0.0.0:8000", Some(false))).is_none());
    }
}
