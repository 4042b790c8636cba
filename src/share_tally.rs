//! Downloads through share links without a limit, counted in memory and written once a second
//! in one transaction. A link with a limit takes each download by a conditional update (its
//! count decides who gets the last one); one without needs its count only to show it, and a
//! write per download would make every share download wait on the database's write lock and
//! drop every instance's cached access reads. A clean stop (SIGTERM, SIGINT) writes what is
//! left; a crash loses at most the last second's counts of unlimited links.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::NaiveDateTime;

use crate::db::models::share_link::ShareLink;
use crate::db::{Db, DbError};
use crate::domain::LinkId;

/// How often the counts are written.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Pending {
    downloads: i64,
    last_used_at: NaiveDateTime,
}

#[derive(Default)]
pub struct ShareTally {
    pending: Mutex<HashMap<LinkId, Pending>>,
}

impl ShareTally {
    pub fn add(&self, link: &LinkId, at: NaiveDateTime) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending
            .entry(link.clone())
            .and_modify(|p| {
                p.downloads += 1;
                p.last_used_at = p.last_used_at.max(at);
            })
            .or_insert(Pending {
                downloads: 1,
                last_used_at: at,
            });
    }

    /// Writes the counts gathered so far; on failure they are kept for the next try.
    pub async fn flush(&self, db: &Db) -> Result<usize, DbError> {
        let batch: Vec<(LinkId, Pending)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().collect()
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let writes: Vec<(LinkId, i64, NaiveDateTime)> = batch
            .iter()
            .map(|(id, p)| (id.clone(), p.downloads, p.last_used_at))
            .collect();
        let count = batch.len();
        match db.run(move |c| ShareLink::add_downloads(c, &writes)).await {
            Ok(()) => Ok(count),
            Err(e) => {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                for (id, p) in batch {
                    pending
                        .entry(id)
                        .and_modify(|q| {
                            q.downloads += p.downloads;
                            q.last_used_at = q.last_used_at.max(p.last_used_at);
                        })
                        .or_insert(p);
                }
                Err(e)
            }
        }
    }

    /// Writes the counts every `FLUSH_EVERY` until dropped; failures are logged and retried.
    pub async fn keep_writing(self: std::sync::Arc<Self>, db: Db) {
        let mut ticks = tokio::time::interval(FLUSH_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = self.flush(&db).await {
                tracing::warn!(error = %e, "writing share link download counts failed; will retry");
            }
        }
    }
}
