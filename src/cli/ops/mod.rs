//! The operations commands (README: "Operations"): `upload`, `import`, `verify` and `move`.
//! Each prints one line per file (above a progress bar on a terminal, plain otherwise), then
//! a summary line, and fails (exit 1) when anything failed. What they share is here: the
//! database and storages opened, the `--as` user checked, changes written to the audit log.

pub mod import;
pub mod move_files;
pub mod progress;
pub mod upload;
pub mod verify;

use std::sync::Arc;

use crate::config::Settings;
use crate::db::Db;
use crate::db::models::audit_event::{AuditEvent, NewEvent};
use crate::db::models::user::User;
use crate::domain::{AccessRule, Username};
use crate::startup;
use crate::storage::{Storage, Storages};

use super::CliError;

/// The database, the audit log and the storages, as a start opens them.
pub struct Context {
    pub settings: Settings,
    pub db: Db,
    pub audit: Db,
    pub storages: Storages,
}

impl Context {
    pub fn open(settings: Settings) -> Result<Self, CliError> {
        let db = startup::open_database(&settings)?.db;
        let audit = db.audit(1)?;
        let storages =
            Storages::from_settings(&settings).map_err(|e| CliError::Input(e.to_string()))?;
        Ok(Self {
            settings,
            db,
            audit,
            storages,
        })
    }

    /// What a start cleans up before it takes uploads: the objects of uploads a crash (or a
    /// kill of this command) cut short between object and row.
    pub async fn reconcile(&self) {
        crate::upload::reconcile_interrupted(&self.db, &self.storages).await;
    }

    /// The configured storage `name`, or an error naming the ones there are.
    pub fn storage(&self, name: &str) -> Result<Arc<dyn Storage>, CliError> {
        self.storages.get(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.storages.names().collect();
            CliError::Input(format!(
                "there is no storage named `{name}` (configured: {})",
                known.join(", ")
            ))
        })
    }

    /// The user `name`, which must exist.
    pub fn user(&self, name: &str) -> Result<User, CliError> {
        let username = Username::parse(name)?;
        User::find_by_username(&mut *self.db.get()?, &username)?
            .ok_or_else(|| CliError::Input(format!("there is no user named `{username}`")))
    }

    /// The `--as` user: an active staff member (or superuser), as the admin requires.
    pub fn staff_user(&self, name: &str) -> Result<User, CliError> {
        let user = self.user(name)?;
        if !user.is_active {
            return Err(CliError::Input(format!(
                "`{}` is inactive: --as needs an active staff user",
                user.username
            )));
        }
        if !user.is_staff_member() {
            return Err(CliError::Input(format!(
                "`{}` is not staff: --as needs an active staff user",
                user.username
            )));
        }
        Ok(user)
    }

    /// Writes one change to the audit log at once, as made from the command line by `actor`.
    pub fn record(&self, event: &str, actor: Option<&User>, fill: impl FnOnce(&mut NewEvent)) {
        record_in(&self.audit, event, actor, fill);
    }
}

/// `Context::record` into `audit`, for work that runs on a task of its own (an upload's store,
/// which records its event as soon as the row is written). The write is synchronous and
/// committed when it returns: nothing is buffered that an exit or a kill could lose.
pub fn record_in(audit: &Db, event: &str, actor: Option<&User>, fill: impl FnOnce(&mut NewEvent)) {
    let mut recorded = NewEvent {
        at: chrono::Utc::now().naive_utc(),
        event: event.to_owned(),
        route: Some("cli".to_owned()),
        user_id: actor.map(|u| u.id.to_string()),
        username: actor.map(|u| u.username.to_string()),
        ..NewEvent::default()
    };
    fill(&mut recorded);
    let written = audit
        .get()
        .map_err(CliError::from)
        .and_then(|mut c| Ok(AuditEvent::insert_batch(&mut c, &[recorded])?));
    if let Err(e) = written {
        tracing::error!(error = %e, event, "could not write an audit event");
    }
}

/// `--access` as the admin's form takes it.
pub fn parse_rule(value: &str) -> Result<AccessRule, String> {
    AccessRule::parse(value).ok_or_else(|| {
        format!("“{value}” is not an access rule (owner, staff, authenticated or users)")
    })
}

/// The failure of a command that went through all its items: how many failed, of how many.
pub fn failures(failed: usize, of: usize, what: &str) -> Result<(), CliError> {
    if failed == 0 {
        Ok(())
    } else {
        Err(CliError::Input(format!("{failed} of {of} {what} failed")))
    }
}

/// Runs an operation's future on the runtime the app's own code expects (actix's).
pub fn block_on<T>(work: impl std::future::Future<Output = T>) -> T {
    actix_web::rt::System::new().block_on(work)
}
