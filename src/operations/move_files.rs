//! `private-media move`: a file's object copied to another storage, the copy read back and
//! checked against the row's SHA-256, the row switched to the copy (one guarded UPDATE), and
//! the original removed a moment later.
//!
//! Every step is journalled in `pending_uploads` under the mover's own name (`move-PID-ID`):
//! the copy's key is reserved before it is written (as an upload's is), and the switch ends
//! that reservation and records the original as an object to remove, in one transaction.
//! A move stopped anywhere leaves at most a journalled object: the next `move` removes each
//! one no row holds (when it is what the journal says it is, size and SHA-256) once the
//! process that journalled it is gone. So after a rerun every file is readable, from one
//! storage or the other, and no object is there twice.
//!
//! Downloads keep working throughout: until the switch the row names the original; after
//! it the copy; and the original stays for `GRACE` after the switch, for a download that
//! read the row just before (or an instance whose access cache has not seen the switch yet,
//! which takes at most a quarter of a second).
//!
//! A replace or a delete of the same file wins: the switch only happens while the row still
//! names the original, and when it does not, the copy is removed and the file reported.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::db::Db;
use crate::db::models::file::FileRow;
use crate::db::models::pending_upload::PendingKey;
use crate::domain::StorageKey;
use crate::storage::Storage;
use crate::upload::{Hasher, commit_reserved, is_the_uploaded_object, release};

use super::{OperationError, read_back};

/// How long an original stays after its row has switched to the copy.
pub const GRACE: Duration = Duration::from_secs(2);
/// The journal names of moves start with this.
const JOURNAL_PREFIX: &str = "move-";

/// Where a move can be told to stop, for the tests of a stopped or raced move
/// (`PRIVATE_MEDIA_MOVE_STALL`): after the first file's copy (`copied`) or after its switch
/// (`switched`), waiting there to be killed, or with `:MS` for that many milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stall {
    step: Step,
    pause: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Copied,
    Switched,
}

impl Stall {
    pub fn parse(value: &str) -> Option<Self> {
        let (step, pause) = match value.split_once(':') {
            Some((step, ms)) => (step, Some(Duration::from_millis(ms.parse().ok()?))),
            None => (value, None),
        };
        let step = match step {
            "copied" => Step::Copied,
            "switched" => Step::Switched,
            _ => return None,
        };
        Some(Self { step, pause })
    }
}

/// What became of one file.
pub enum Moved {
    /// The row names the copy now.
    Done { file: FileRow, key: StorageKey },
    /// The file was replaced or deleted while it was copied: the copy was removed again.
    Changed { file: FileRow },
    /// The file is in the target storage already (a move run again after it finished).
    AlreadyThere { file: FileRow },
}

pub struct Mover {
    db: Db,
    from_name: String,
    from: Arc<dyn Storage>,
    to_name: String,
    to: Arc<dyn Storage>,
    journal: String,
    /// Originals whose row has switched, with when: removed once `GRACE` has passed.
    leaving: VecDeque<(StorageKey, Instant)>,
    stall: Option<Stall>,
    /// Remakes a moved image's thumbnails in `to`; the old ones go with the original.
    thumbnails: crate::thumbnails::Thumbnailer,
}

impl Mover {
    pub fn new(
        db: Db,
        (from_name, from): (String, Arc<dyn Storage>),
        (to_name, to): (String, Arc<dyn Storage>),
        stall: Option<Stall>,
        thumbnails: crate::thumbnails::Thumbnailer,
    ) -> Self {
        Self {
            thumbnails,
            db,
            from_name,
            from,
            to_name,
            to,
            journal: format!(
                "{JOURNAL_PREFIX}{}-{}",
                std::process::id(),
                crate::ids::random_id()
            ),
            leaving: VecDeque::new(),
            stall,
        }
    }

    /// Finishes what stopped moves between the two storages left: each object they
    /// journalled that no row holds is removed (if it is what the journal says), and the
    /// entry ends. Entries of a move still running are left to it. Returns how many ended.
    pub async fn finish_interrupted(&self) -> Result<usize, OperationError> {
        let entries = self.db.read(PendingKey::all).await?;
        let mut finished = 0;
        for entry in entries {
            let storage = if entry.storage == self.from_name {
                &self.from
            } else if entry.storage == self.to_name {
                &self.to
            } else {
                continue;
            };
            if !entry.instance.starts_with(JOURNAL_PREFIX)
                || entry.instance == self.journal
                || mover_alive(&entry.instance)
            {
                continue;
            }
            let (name, key) = (entry.storage.clone(), entry.storage_key.clone());
            let has_row = self
                .db
                .read(move |c| FileRow::find_by_key(c, &name, &key))
                .await?
                .is_some();
            let key = &entry.storage_key;
            if !has_row
                && is_the_uploaded_object(storage.as_ref(), key, entry.size, &entry.sha256).await
            {
                match storage.delete(key).await {
                    Ok(()) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into()),
                }
                // An original left behind by a stopped move takes its thumbnails along, or a
                // file stored later under the same key would find them there.
                crate::thumbnails::remove_derived(storage.as_ref(), key).await;
            }
            release(&self.db, &entry.storage, key).await;
            finished += 1;
        }
        Ok(finished)
    }

    /// Moves one file of the `from` storage.
    pub async fn move_one(&mut self, file: FileRow) -> Result<Moved, OperationError> {
        if file.storage == self.to_name {
            return Ok(Moved::AlreadyThere { file });
        }
        if file.storage != self.from_name {
            return Err(OperationError::Refused(format!(
                "it is in the storage `{}`, not `{}`",
                file.storage, self.from_name
            )));
        }
        let object = (file.size, file.sha256.clone());
        let key = self.copy(&file, &object).await?;
        self.stall_at(Step::Copied).await;
        let (id, from, to) = (file.id.clone(), file.storage_key.clone(), key.clone());
        let (from_name, to_name) = (self.from_name.clone(), self.to_name.clone());
        let (journal, sha256) = (self.journal.clone(), file.sha256.clone());
        let size = file.size;
        let switched = self
            .db
            .run(move |c| {
                FileRow::move_object(
                    c,
                    &id,
                    (&from_name, &from),
                    (&to_name, &to),
                    (&journal, size, &sha256),
                )
            })
            .await;
        match switched {
            Ok(true) => {}
            Ok(false) => {
                self.discard_copy(&key).await;
                return Ok(Moved::Changed { file });
            }
            Err(e) => {
                self.discard_copy(&key).await;
                return Err(e.into());
            }
        }
        self.stall_at(Step::Switched).await;
        if file.thumbnails {
            let moved = FileRow {
                storage: self.to_name.clone(),
                storage_key: key.clone(),
                ..file.clone()
            };
            if let Err(e) = self.thumbnails.make(&self.db, &self.to, &moved).await {
                tracing::warn!(error = %e, file = %file.id, "remaking a moved file's thumbnails failed");
            }
        }
        self.leaving
            .push_back((file.storage_key.clone(), Instant::now()));
        Ok(Moved::Done { file, key })
    }

    /// Copies the file's object to a reserved key of `to` and reads the copy back; the copy
    /// is removed again unless it is exactly the row's content.
    async fn copy(
        &self,
        file: &FileRow,
        object: &(i64, String),
    ) -> Result<StorageKey, OperationError> {
        use futures_util::StreamExt;
        let mut source = self.from.open(&file.storage_key, None).await?;
        let mut pending = self.to.start_upload().await?;
        let mut hasher = Hasher::new();
        let mut size = 0u64;
        while let Some(chunk) = source.next().await {
            let written = match chunk {
                Ok(chunk) => {
                    size += chunk.len() as u64;
                    match hasher.update(&chunk).await {
                        Ok(()) => pending.write(chunk).await.map_err(OperationError::from),
                        Err(e) => Err(e.into()),
                    }
                }
                Err(e) => Err(e.into()),
            };
            if let Err(e) = written {
                pending.abort().await;
                return Err(e);
            }
        }
        let sha256 = hasher.finish().await?;
        if i64::try_from(size).ok() != Some(file.size) || sha256 != file.sha256 {
            pending.abort().await;
            return Err(OperationError::Refused(
                "its object differs from its row (size or SHA-256; see `private-media verify`)"
                    .to_owned(),
            ));
        }
        pending.finish().await?;
        let key = commit_reserved(
            &self.db,
            self.to.as_ref(),
            &self.to_name,
            &self.journal,
            pending,
            file.storage_key.clone(),
            object,
        )
        .await?;
        match read_back(self.to.as_ref(), &key).await {
            Ok(copy)
                if i64::try_from(copy.size).ok() == Some(file.size)
                    && copy.sha256 == file.sha256 =>
            {
                Ok(key)
            }
            Ok(_) => {
                self.discard_copy(&key).await;
                Err(OperationError::Refused(
                    "the copy read back differs from the original".to_owned(),
                ))
            }
            Err(e) => {
                self.discard_copy(&key).await;
                Err(e)
            }
        }
    }

    async fn discard_copy(&self, key: &StorageKey) {
        match self.to.delete(key).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            // Journalled: the next move removes it.
            Err(e) => {
                tracing::warn!(key = %key, error = %e, "could not remove a copy; the next move removes it");
                return;
            }
        }
        release(&self.db, &self.to_name, key).await;
    }

    /// Removes the originals whose grace has passed, or all of them (waiting out their grace)
    /// when `all`. Returns those that could not be removed (journalled: the next move does).
    pub async fn remove_originals(&mut self, all: bool) -> Vec<(StorageKey, OperationError)> {
        let mut failed = Vec::new();
        while let Some((_, switched)) = self.leaving.front() {
            let due = *switched + GRACE;
            let now = Instant::now();
            if due > now {
                if !all {
                    break;
                }
                tokio::time::sleep(due - now).await;
            }
            let Some((key, _)) = self.leaving.pop_front() else {
                break;
            };
            crate::thumbnails::remove_derived(self.from.as_ref(), &key).await;
            match self.from.delete(&key).await {
                Ok(()) => release(&self.db, &self.from_name, &key).await,
                Err(e) if e.is_not_found() => release(&self.db, &self.from_name, &key).await,
                Err(e) => failed.push((key, e.into())),
            }
        }
        failed
    }

    /// Stops at `step` of the first file, when told to (`Stall`).
    async fn stall_at(&mut self, step: Step) {
        let Some(stall) = self.stall.filter(|s| s.step == step) else {
            return;
        };
        self.stall = None;
        println!("stalled after the first file's {step:?} step (PRIVATE_MEDIA_MOVE_STALL)");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        match stall.pause {
            Some(pause) => tokio::time::sleep(pause).await,
            None => std::future::pending::<()>().await,
        }
    }
}

/// Whether the mover that journalled under `instance` (`move-PID-ID`) still runs on this
/// machine. A name that does not parse is taken as alive: its entries are left alone.
fn mover_alive(instance: &str) -> bool {
    let pid = instance
        .strip_prefix(JOURNAL_PREFIX)
        .and_then(|rest| rest.split('-').next())
        .and_then(|pid| pid.parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw);
    match pid {
        Some(pid) => !matches!(
            rustix::process::test_kill_process(pid),
            Err(rustix::io::Errno::SRCH)
        ),
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_names_tell_live_movers_from_dead_ones() {
        assert!(mover_alive(&format!("move-{}-abc", std::process::id())));
        assert!(!mover_alive("move-2147483000-abc"));
        assert!(mover_alive("move-x-abc"));
        assert!(mover_alive("somebody"));
    }

    #[test]
    fn stalls_parse() {
        let stall = |step, pause| Some(Stall { step, pause });
        assert_eq!(Stall::parse("copied"), stall(Step::Copied, None));
        assert_eq!(Stall::parse("switched"), stall(Step::Switched, None));
        assert_eq!(
            Stall::parse("copied:250"),
            stall(Step::Copied, Some(Duration::from_millis(250)))
        );
        assert_eq!(Stall::parse("copied:soon"), None);
        assert_eq!(Stall::parse("never"), None);
    }
}
