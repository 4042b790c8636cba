//! The command line (README: "Command line"): clap's definitions and what each command does;
//! longer commands live in modules of their own beside this one.
//! Every failure comes back as a `CliError`, which `main` prints as one line.

mod ops;
mod token;

use std::io::{BufRead, IsTerminal};

use clap::{Parser, Subcommand};

use crate::audit::csv::{self, ExportError};
use crate::audit::filter::{FilterError, FilterInput};
use crate::auth::password::{NewPassword, PasswordError};
use crate::config::{ConfigError, Settings, StorageSettings};
use crate::db::models::user::{NewUser, User, UserError};
use crate::db::models::user_removal::{self, RemovalError};
use crate::db::{Db, DbError};
use crate::domain::{Role, Username, UsernameError};
use crate::startup::{self, Application, StartupError};
use crate::storage;

mod thumbnails;

#[derive(Debug, Parser)]
#[command(
    name = "private-media",
    version,
    about = "Keeps private media files and serves them only to the people allowed to see them."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run pending migrations, then serve HTTP.
    Serve {
        /// Address to listen on (default 127.0.0.1:8000, or PRIVATE_MEDIA_BIND).
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
    },
    /// Run pending database migrations and exit.
    Migrate,
    /// Validate the configuration and reach the database and every storage (a local folder
    /// is checked to be writable, nothing in it changed; in S3 a probe object is written, read
    /// back and deleted); one line each, exit 1 on any failure.
    Check,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Make the thumbnails of stored images (JPEG, PNG, GIF, WebP): one line per file and a
    /// summary, a progress bar on a terminal; exit 1 if any failed.
    Thumbnails {
        /// Only the images that have none yet.
        #[arg(long)]
        missing: bool,
        /// Only the files of this storage.
        #[arg(long, value_name = "NAME")]
        storage: Option<String>,
    },
    /// Read the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Store files as the admin upload does, as a staff user; a line per file.
    Upload(ops::upload::UploadArgs),
    /// Register the files already under a filesystem storage's root, keeping their keys.
    Import(ops::import::ImportArgs),
    /// Read every object back against its row; report missing, corrupt and orphan objects.
    Verify(ops::verify::VerifyArgs),
    /// Move files between storages (copy, check, switch the row, remove the original).
    Move(ops::move_files::MoveArgs),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the events as CSV to stdout, newest first (the same CSV as /admin/audit.csv).
    Export {
        /// From the start of this UTC day (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// To the end of this UTC day (YYYY-MM-DD), included.
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// Only the events of this file (its id).
        #[arg(long, value_name = "ID")]
        file: Option<String>,
        /// Only the events of this username.
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// Only this kind of event (download, upload, edit, owner, replace, delete,
        /// link_created, link_revoked, user_created, user_changed, user_deleted, password_set,
        /// password_changed, login, login_failed, token_created, token_revoked, moved).
        #[arg(long, value_name = "KIND")]
        event: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (the password is prompted for, or read from stdin).
    Add {
        username: String,
        /// May use the admin.
        #[arg(long)]
        staff: bool,
        /// May do everything, including managing users.
        #[arg(long)]
        superuser: bool,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password; ends all of that user's sessions.
    SetPassword {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List {
        /// `text` (a table, the default) or `json` (one array of objects, for scripts).
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Deactivate a user; ends all of that user's sessions.
    Deactivate { username: String },
    /// Activate a user again.
    Activate { username: String },
    /// Set a user's role: `user`, `staff` or `superuser`.
    SetRole {
        username: String,
        #[arg(value_parser = parse_role)]
        role: Role,
    },
    /// Delete a user; their sessions end at once and the share links they made are removed.
    /// While they own files the delete is refused, unless --reassign-to names who gets them.
    Delete {
        username: String,
        /// The active user who becomes the owner of their files.
        #[arg(long, value_name = "USER")]
        reassign_to: Option<String>,
    },
}

/// How `user list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

fn parse_role(value: &str) -> Result<Role, String> {
    Role::parse(value).ok_or_else(|| format!("“{value}” is not a role (user, staff or superuser)"))
}

/// One user as `user list --format json` prints it.
#[derive(serde::Serialize)]
struct ListedUser<'a> {
    username: &'a str,
    role: &'static str,
    active: bool,
    created_at: String,
    last_login_at: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error("invalid username: {0}")]
    Username(#[from] UsernameError),
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error("{0}")]
    Input(String),
    #[error("the server stopped with an error: {0}")]
    Server(std::io::Error),
    #[error("{0} of the checks failed")]
    Check(usize),
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Removal(#[from] RemovalError),
    #[error("cannot write the list: {0}")]
    Output(String),
    #[error("{0} of the images got no thumbnails")]
    Thumbnails(usize),
}

impl Cli {
    /// Whether the command is a long-running server (it logs at `info` by default).
    pub fn is_server(&self) -> bool {
        matches!(self.command, Command::Serve { .. })
    }

    pub fn run(self) -> Result<(), CliError> {
        let mut settings = Settings::load()?;
        match self.command {
            Command::Serve { bind } => {
                if let Some(bind) = bind {
                    settings.set_bind(&bind)?;
                }
                serve(settings)
            }
            // The database only: no secret key is created and no storage is opened (or swept).
            Command::Migrate => {
                let opened = startup::open_database(&settings)?;
                match opened.applied_migrations {
                    0 => println!("no migrations pending: the database is up to date"),
                    1 => println!("applied 1 migration"),
                    n => println!("applied {n} migrations"),
                }
                Ok(())
            }
            Command::Check => check(settings),
            Command::User { command } => {
                let db = startup::open_database(&settings)?.db;
                user_command(&db, command)
            }
            Command::Audit { command } => audit_command(&settings, command),
            Command::Token { command } => {
                token::run(&startup::open_database(&settings)?.db, command)
            }
            Command::Upload(args) => ops::upload::run(&ops::Context::open(settings)?, args),
            Command::Import(args) => ops::import::run(&ops::Context::open(settings)?, args),
            Command::Verify(args) => ops::verify::run(&ops::Context::open(settings)?, args),
            Command::Move(args) => ops::move_files::run(&ops::Context::open(settings)?, args),
            Command::Thumbnails { missing, storage } => {
                thumbnails::backfill(&settings, missing, storage)
            }
        }
    }
}

fn serve(settings: Settings) -> Result<(), CliError> {
    if let Some(warning) = startup::plain_http_warning(&settings) {
        tracing::warn!("{warning}");
    }
    let prepared = startup::prepare(settings)?;
    let db = prepared.db.clone();
    let bind = prepared.settings.bind;
    actix_web::rt::System::new().block_on(async move {
        // Listening first: a taken port must fail before a generated password is printed
        // for an `admin` nobody could then log in as.
        let app = Application::build(prepared)?;
        create_first_superuser(&db)?;
        warn_without_superuser(&db)?;
        tracing::info!("serving on http://{}:{}/", bind.ip(), app.port());
        app.run_until_stopped().await.map_err(CliError::Server)
    })
}

/// Users but no active superuser: the app works, but nobody can manage users in it.
fn warn_without_superuser(db: &Db) -> Result<(), CliError> {
    let mut conn = db.get()?;
    if User::count(&mut conn)? > 0 && User::count_active_superusers(&mut conn)? == 0 {
        tracing::warn!(
            "there are users but no active superuser, so nobody can manage users from the web: \
             create one with `private-media user add NAME --superuser` (or activate one)"
        );
    }
    Ok(())
}

/// Reads and probes, and creates or removes nothing in a data dir: a data dir, database file
/// or storage folder that does not exist yet is reported as such (the first `serve` or
/// `migrate` makes it), and what a start cleans up (a stopped instance's temp files) is left
/// for that start.
fn check(settings: Settings) -> Result<(), CliError> {
    println!("configuration: ok");
    let data_dir = &settings.data_dir;
    let made = |path: &std::path::Path| {
        if path.exists() {
            ""
        } else {
            " (not created yet)"
        }
    };
    println!("data dir: {}{}", data_dir.display(), made(data_dir));
    let proxies = &settings.server.trusted_proxies;
    if proxies.is_empty() {
        println!("trusted proxies: none");
    } else {
        println!("trusted proxies: {proxies}");
    }
    if let Some(warning) = startup::plain_http_warning(&settings) {
        println!("warning: {warning}");
    }
    let mut failures = 0;
    println!("database url: {}", settings.database.redacted());
    let missing_sqlite = settings.sqlite_path().filter(|path| !path.exists());
    let pending = match missing_sqlite {
        Some(_) => None,
        None => Some(Db::pending_migrations_at(&settings.database)),
    };
    match pending {
        None => println!("database: not created yet (`private-media migrate` creates it)"),
        Some(Ok(0)) => println!("database: ok"),
        Some(Ok(n)) => {
            println!("database: ok ({n} migrations pending: run `private-media migrate`)")
        }
        Some(Err(e)) => {
            failures += 1;
            println!("database: FAILED: {e}");
        }
    }
    actix_web::rt::System::new().block_on(async {
        for (name, config) in &settings.storages {
            let kind = match config {
                StorageSettings::Filesystem { root } if !root.exists() => {
                    match creatable(root) {
                        Ok(()) => println!(
                            "storage `{name}` (filesystem): {} not created yet (the first start makes it)",
                            root.display()
                        ),
                        Err(problem) => {
                            failures += 1;
                            println!("storage `{name}` (filesystem): FAILED: {problem}");
                        }
                    }
                    continue;
                }
                StorageSettings::Filesystem { .. } => "filesystem",
                StorageSettings::S3(_) => "s3",
            };
            match storage::check(name, config).await {
                Ok(()) => println!("storage `{name}` ({kind}): ok"),
                Err(e) => {
                    failures += 1;
                    println!("storage `{name}` ({kind}): FAILED: {e}");
                }
            }
        }
    });
    if failures > 0 {
        return Err(CliError::Check(failures));
    }
    Ok(())
}

/// Whether a folder that does not exist yet could be made: its nearest existing ancestor must
/// be a folder (a file in the way would fail the first start).
fn creatable(path: &std::path::Path) -> Result<(), String> {
    match path.ancestors().skip(1).find(|a| a.exists()) {
        Some(existing) if !existing.is_dir() => Err(format!(
            "cannot create {}: {} is not a folder",
            path.display(),
            existing.display()
        )),
        _ => Ok(()),
    }
}

/// On an empty database, creates the superuser `admin` so one command gives a working app.
/// The password is `PRIVATE_MEDIA_ADMIN_PASSWORD`, or random and printed once.
fn create_first_superuser(db: &Db) -> Result<(), CliError> {
    if User::count(&mut *db.get()?)? > 0 {
        return Ok(());
    }
    let (password, generated) = match std::env::var("PRIVATE_MEDIA_ADMIN_PASSWORD") {
        Ok(p) => (p, false),
        Err(_) => (crate::ids::random_token()[..20].to_owned(), true),
    };
    let password = NewPassword::parse(password)
        .map_err(|e| CliError::Input(format!("PRIVATE_MEDIA_ADMIN_PASSWORD: {e}")))?;
    let username = Username::parse("admin")?;
    // Hashed before a connection is taken: argon2 never runs while one is held.
    let password_hash = password.hash()?;
    let created = User::create(
        &mut *db.get()?,
        NewUser {
            username,
            password_hash,
            role: Role::Superuser,
        },
    );
    match created {
        Ok(_) if generated => {
            let shown = password.expose();
            println!("Created the superuser `admin` with the password: {shown}");
            println!(
                "It is shown only this once. Change it with: private-media user set-password admin"
            );
            Ok(())
        }
        Ok(_) => {
            tracing::info!("created the superuser `admin` with PRIVATE_MEDIA_ADMIN_PASSWORD");
            Ok(())
        }
        // Another instance starting at the same moment created it first.
        Err(UserError::Duplicate(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A change made from the command line goes into the audit log like one made on the web,
/// written at once (there is no server's queue here); who ran the command is the operating
/// system's to say, so the event names the command line instead of a user.
pub(crate) fn record_change(db: &Db, event: &str, detail: String) -> Result<(), CliError> {
    use crate::db::models::audit_event::{AuditEvent, NewEvent};
    let audit = db.audit(1)?;
    AuditEvent::insert_batch(
        &mut *audit.get()?,
        &[NewEvent {
            at: chrono::Utc::now().naive_utc(),
            event: event.to_owned(),
            route: Some("cli".to_owned()),
            detail: Some(format!("{detail} (from the command line)")),
            ..NewEvent::default()
        }],
    )?;
    Ok(())
}

fn user_command(db: &Db, command: UserCommand) -> Result<(), CliError> {
    // A connection per step: none is held while a password is typed or hashed.
    match command {
        UserCommand::Add {
            username,
            staff,
            superuser,
            password_stdin,
        } => {
            let username = Username::parse(&username)?;
            // Fail before asking for a password that would be thrown away.
            if User::find_by_username(&mut *db.get()?, &username)?.is_some() {
                return Err(UserError::Duplicate(username).into());
            }
            let password_hash = read_new_password(password_stdin)?.hash()?;
            let role = if superuser {
                Role::Superuser
            } else if staff {
                Role::Staff
            } else {
                Role::User
            };
            User::create(
                &mut *db.get()?,
                NewUser {
                    username: username.clone(),
                    password_hash,
                    role,
                },
            )?;
            record_change(
                db,
                "user_created",
                format!("“{username}”, {}", role.as_str()),
            )?;
            println!("created user `{username}`");
        }
        UserCommand::SetPassword {
            username,
            password_stdin,
        } => {
            let username = Username::parse(&username)?;
            User::get_by_username(&mut *db.get()?, &username)?;
            let password_hash = read_new_password(password_stdin)?.hash()?;
            User::set_password(&mut *db.get()?, &username, password_hash)?;
            record_change(db, "password_set", format!("for “{username}”"))?;
            println!("password of `{username}` changed; their sessions have ended");
        }
        UserCommand::List { format } => {
            let users = User::list(&mut *db.get()?)?;
            match format {
                ListFormat::Text => print_user_table(&users),
                ListFormat::Json => print_user_json(&users)?,
            }
        }
        UserCommand::SetRole { username, role } => {
            let username = Username::parse(&username)?;
            let before = User::get_by_username(&mut *db.get()?, &username)?.role();
            User::set_role(&mut *db.get()?, &username, role)?;
            record_change(
                db,
                "user_changed",
                format!("“{username}”: role {} → {}", before.as_str(), role.as_str()),
            )?;
            println!("`{username}` is now {}", role.as_str());
            warn_without_superuser(db)?;
        }
        UserCommand::Delete {
            username,
            reassign_to,
        } => {
            let username = Username::parse(&username)?;
            let heir = reassign_to.as_deref().map(Username::parse).transpose()?;
            let (deleted, removed) =
                user_removal::delete(&mut *db.get()?, &username, heir.as_ref())?;
            let files = match &heir {
                Some(heir) => format!("{} file(s) to “{heir}”", removed.files_reassigned),
                None => "no files".to_owned(),
            };
            record_change(
                db,
                "user_deleted",
                format!(
                    "“{username}” ({}), {}: {files}, {} share link(s) removed",
                    deleted.id,
                    deleted.role().as_str(),
                    removed.links_removed
                ),
            )?;
            match &heir {
                Some(heir) => println!(
                    "deleted `{username}`; {} file(s) now belong to `{heir}`; {} share link(s) removed",
                    removed.files_reassigned, removed.links_removed
                ),
                None => println!(
                    "deleted `{username}`; {} share link(s) removed",
                    removed.links_removed
                ),
            }
        }
        UserCommand::Deactivate { username } => {
            let username = Username::parse(&username)?;
            User::set_active(&mut *db.get()?, &username, false)?;
            record_change(
                db,
                "user_changed",
                format!("“{username}”: active → inactive"),
            )?;
            println!("deactivated `{username}`; their sessions have ended");
        }
        UserCommand::Activate { username } => {
            let username = Username::parse(&username)?;
            User::set_active(&mut *db.get()?, &username, true)?;
            record_change(
                db,
                "user_changed",
                format!("“{username}”: inactive → active"),
            )?;
            println!("activated `{username}`");
        }
    }
    Ok(())
}

fn print_user_table(users: &[User]) {
    println!(
        "{:<32} {:<10} {:<8} LAST LOGIN",
        "USERNAME", "ROLE", "ACTIVE"
    );
    for user in users {
        let role = user.role().as_str();
        let last = user
            .last_login_at
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_else(|| "never".to_owned());
        let active = if user.is_active { "yes" } else { "no" };
        println!("{:<32} {role:<10} {active:<8} {last}", user.username);
    }
}

/// Times as RFC 3339 in UTC, which every JSON reader parses.
fn print_user_json(users: &[User]) -> Result<(), CliError> {
    let utc = |t: chrono::NaiveDateTime| {
        t.and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let listed: Vec<ListedUser<'_>> = users
        .iter()
        .map(|user| ListedUser {
            username: user.username.as_str(),
            role: user.role().as_str(),
            active: user.is_active,
            created_at: utc(user.created_at),
            last_login_at: user.last_login_at.map(utc),
        })
        .collect();
    let text =
        serde_json::to_string_pretty(&listed).map_err(|e| CliError::Output(e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn audit_command(settings: &Settings, command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::Export {
            from,
            to,
            file,
            user,
            event,
        } => {
            // The filters first: a mistyped date opens no database.
            let filter = FilterInput {
                file,
                user,
                event,
                from,
                to,
            }
            .parse()?;
            let db = startup::open_database(settings)?.db;
            let audit = db.audit(2)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            csv::export(&audit, &filter, &mut out)?;
            Ok(())
        }
    }
}

fn read_new_password(from_stdin: bool) -> Result<NewPassword, CliError> {
    let text = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Input(format!("cannot read the password from stdin: {e}")))?;
        let line = line.strip_suffix('\n').unwrap_or(&line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            return Err(CliError::Input(
                "no password on stdin (expected it on the first line)".into(),
            ));
        }
        line.to_owned()
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Input(
                "cannot prompt for a password without a terminal; pipe it in with --password-stdin"
                    .into(),
            ));
        }
        let prompt_error =
            |e: std::io::Error| CliError::Input(format!("cannot read the password: {e}"));
        let first = rpassword::prompt_password("Password: ").map_err(prompt_error)?;
        let second = rpassword::prompt_password("Password (again): ").map_err(prompt_error)?;
        if first != second {
            return Err(CliError::Input("the two passwords differ".into()));
        }
        first
    };
    Ok(NewPassword::parse(text)?)
}
