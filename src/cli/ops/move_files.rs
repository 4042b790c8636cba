//! `private-media move --from A --to B [--file ID]...`: files moved between storages one at
//! a time (`operations::move_files`), after the leftovers of a stopped move are cleared.

use crate::db::models::file::FileRow;
use crate::domain::FileId;
use crate::operations::move_files::{Moved, Mover, Stall};

use super::progress::Progress;
use super::{Context, failures};
use crate::cli::CliError;

/// Rows read from the database at a time.
const PAGE: i64 = 200;

#[derive(Debug, clap::Args)]
pub struct MoveArgs {
    /// The storage the files are in.
    #[arg(long, value_name = "NAME")]
    from: String,
    /// The storage they go to.
    #[arg(long, value_name = "NAME")]
    to: String,
    /// Only this file (once per file; default: every file of --from).
    #[arg(long = "file", value_name = "ID")]
    files: Vec<String>,
}

pub fn run(ctx: &Context, args: MoveArgs) -> Result<(), CliError> {
    if args.from == args.to {
        return Err(CliError::Input(
            "--from and --to name the same storage".into(),
        ));
    }
    let from = ctx.storage(&args.from)?;
    let to = ctx.storage(&args.to)?;
    let stall = match std::env::var("PRIVATE_MEDIA_MOVE_STALL") {
        Ok(value) => Some(Stall::parse(&value).ok_or_else(|| {
            CliError::Input(format!(
                "PRIVATE_MEDIA_MOVE_STALL: “{value}” is not copied or switched"
            ))
        })?),
        Err(_) => None,
    };
    let ids = args
        .files
        .iter()
        .map(|id| {
            FileId::parse(id).map_err(|_| CliError::Input(format!("“{id}” is not a file id")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut mover = Mover::new(
        ctx.db.clone(),
        (args.from.clone(), from),
        (args.to.clone(), to),
        stall,
        crate::thumbnails::Thumbnailer::from_settings(&ctx.settings),
    );
    let (mut moved, mut failed, mut total) = (0usize, 0usize, 0usize);
    super::block_on(async {
        let finished = mover
            .finish_interrupted()
            .await
            .map_err(|e| CliError::Input(format!("cannot finish a stopped move: {e}")))?;
        let progress = Progress::new(ids.len(), "files");
        if finished > 0 {
            progress.line(&format!("finished {finished} step(s) a stopped move left"));
        }
        let mut after: Option<FileId> = None;
        let mut named = ids.into_iter();
        loop {
            // The files named, one at a time, or the storage's files a page at a time.
            let batch: Vec<Result<FileRow, String>> = if args.files.is_empty() {
                let (name, from) = (args.from.clone(), after.clone());
                let rows = ctx
                    .db
                    .read(move |c| FileRow::page_in_storage(c, &name, from.as_ref(), PAGE))
                    .await?;
                progress.grow(rows.len());
                after = rows.last().map(|r| r.id.clone());
                rows.into_iter().map(Ok).collect()
            } else {
                match named.next() {
                    Some(id) => {
                        let lookup = id.clone();
                        let row = ctx.db.read(move |c| FileRow::find(c, &lookup)).await?;
                        vec![row.ok_or_else(|| id.to_string())]
                    }
                    None => Vec::new(),
                }
            };
            if batch.is_empty() {
                break;
            }
            for row in batch {
                total += 1;
                let file = match row {
                    Ok(file) => file,
                    Err(id) => {
                        failed += 1;
                        progress.line(&format!("failed {id}: there is no such file"));
                        progress.advance();
                        continue;
                    }
                };
                let id = file.id.clone();
                match mover.move_one(file).await {
                    Ok(Moved::Done { file, key }) => {
                        moved += 1;
                        // The event before the line, as `upload` does: the switch is the change.
                        ctx.record("moved", None, |e| {
                            e.file_id = Some(id.to_string());
                            e.file_name = Some(file.original_name.clone());
                            e.storage_key = Some(key.to_string());
                            e.detail = Some(format!(
                                "from the storage `{}` ({}) to `{}` ({key})",
                                args.from, file.storage_key, args.to
                            ));
                        });
                        progress.line(&format!(
                            "moved {id}: {}:{} → {}:{key}",
                            args.from,
                            file.storage_key.as_str().escape_debug(),
                            args.to
                        ));
                    }
                    Ok(Moved::AlreadyThere { .. }) => {
                        progress.line(&format!("skipped {id}: it is in `{}` already", args.to));
                    }
                    Ok(Moved::Changed { .. }) => {
                        failed += 1;
                        progress.line(&format!(
                            "skipped {id}: it was replaced or deleted while it was copied; the copy was removed"
                        ));
                    }
                    Err(e) => {
                        failed += 1;
                        progress.line(&format!("failed {id}: {e}"));
                    }
                }
                progress.advance();
                for (key, e) in mover.remove_originals(false).await {
                    failed += 1;
                    progress.line(&format!("failed to remove {}:{key}: {e}", args.from));
                }
            }
        }
        for (key, e) in mover.remove_originals(true).await {
            failed += 1;
            progress.line(&format!("failed to remove {}:{key}: {e}", args.from));
        }
        progress.finish(&format!(
            "moved {moved} of {total} file(s) from `{}` to `{}`: {failed} failed",
            args.from, args.to
        ));
        Ok::<(), CliError>(())
    })?;
    failures(failed, total.max(1), "files")
}
