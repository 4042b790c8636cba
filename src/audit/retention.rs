//! `[audit] retention_days`: events older than that are removed once a day, a few thousand
//! per transaction, so the table is never locked for long.

use std::time::Duration;

use chrono::Utc;

use crate::db::Db;
use crate::db::models::audit_event::AuditEvent;

/// Events removed per transaction.
const PRUNE_BATCH: i64 = 5000;
const EVERY: Duration = Duration::from_secs(24 * 3600);

/// Removes what is older than `days` now and then once a day, for as long as it runs.
pub async fn keep_pruning(db: Db, days: u32) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match prune(&db, days).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, days, "old audit events removed"),
            Err(e) => {
                tracing::warn!(error = %e, "removing old audit events failed; next try tomorrow")
            }
        }
    }
}

/// Removes every event older than `days`; returns how many.
pub async fn prune(db: &Db, days: u32) -> Result<usize, crate::db::DbError> {
    let before = Utc::now().naive_utc() - chrono::Duration::days(i64::from(days));
    let mut removed = 0;
    loop {
        let n = db
            .run_uncached(move |c| AuditEvent::prune(c, before, PRUNE_BATCH))
            .await?;
        removed += n;
        if n == 0 {
            return Ok(removed);
        }
        // Other writers get their turn between batches.
        tokio::task::yield_now().await;
    }
}
