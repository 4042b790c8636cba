//! What every request handler shares: settings, the database pool, and in-process services.

use std::sync::Arc;

use crate::audit::Audit;
use crate::auth::throttle::LoginThrottle;
use crate::auth::token_throttle::TokenThrottle;
use crate::config::Settings;
use crate::db::Db;
use crate::share_tally::ShareTally;
use crate::storage::Storages;

pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub throttle: LoginThrottle,
    /// Bad API tokens, counted in this instance's memory.
    pub token_throttle: TokenThrottle,
    pub storages: Storages,
    pub share_tally: Arc<ShareTally>,
    pub audit: Audit,
    /// Where the audit log is read from (on SQLite a file of its own: `Db::audit`).
    pub audit_db: Db,
    /// Makes the thumbnails of uploaded images (src/thumbnails/).
    pub thumbnailer: crate::thumbnails::Thumbnailer,
}

impl AppState {
    /// The storage a file's row names; a row naming one the configuration lacks is a fault
    /// of the site's setup, not of the request.
    pub fn storage_of(
        &self,
        file: &crate::db::models::file::FileRow,
    ) -> Result<&Arc<dyn crate::storage::Storage>, crate::error::AppError> {
        self.storages.get(&file.storage).ok_or_else(|| {
            crate::error::AppError::Internal(format!(
                "file {} is in the storage `{}`, which is not configured",
                file.id, file.storage
            ))
        })
    }

    /// Records a change in the audit log (README: "Audit log"): `event` names it, `fill` adds
    /// who and what. Queued, never written on the request's time.
    pub async fn record_change(
        &self,
        req: &actix_web::HttpRequest,
        event: &str,
        fill: impl FnOnce(&mut crate::db::models::audit_event::NewEvent),
    ) {
        let recorded =
            crate::audit::change(req, &self.settings.server.trusted_proxies, event, fill);
        self.audit.record(recorded).await;
    }
}
