//! `private-media thumbnails [--missing] [--storage NAME]` (README: "Thumbnails"): makes the
//! thumbnails of stored images through the same `Thumbnailer` uploads use, one line per
//! file on stdout and a summary; a progress bar on stderr when it is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

use super::CliError;
use crate::config::Settings;
use crate::db::models::file::FileRow;
use crate::db::models::file_thumbnails::Wanted;
use crate::domain::FileId;
use crate::startup;
use crate::storage::Storages;
use crate::thumbnails::Thumbnailer;

/// Files read from the database at a time.
const PAGE: i64 = 200;

pub(super) fn backfill(
    settings: &Settings,
    missing: bool,
    storage: Option<String>,
) -> Result<(), CliError> {
    if let Some(name) = &storage
        && !settings.storages.contains_key(name)
    {
        return Err(CliError::Input(format!(
            "there is no storage named `{name}` in the configuration"
        )));
    }
    if !settings.thumbnails.enabled {
        return Err(CliError::Input(
            "thumbnails are turned off ([thumbnails] enabled = false)".into(),
        ));
    }
    let db = startup::open_database(settings)?.db;
    let storages = Storages::from_settings(settings).map_err(|e| CliError::Input(e.to_string()))?;
    let thumbnailer = Thumbnailer::from_settings(settings);
    let wanted = Wanted { missing, storage };
    let total = {
        let mut conn = db.get()?;
        FileRow::count_wanting_thumbnails(&mut conn, &wanted)?
    };
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(u64::try_from(total).unwrap_or(0));
        if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}") {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    // Like the operations' lines: a closed stdout stops the lines, not the backfill.
    let lines = super::ops::progress::Lines::default();
    let say = |line: String| {
        if bar.is_hidden() {
            lines.print(&line);
        } else {
            bar.println(line);
        }
    };
    let (mut made, mut failed, mut skipped) = (0usize, 0usize, 0usize);
    actix_web::rt::System::new().block_on(async {
        let mut after: Option<FileId> = None;
        loop {
            let (page_wanted, page_after) = (wanted.clone(), after.clone());
            let page = db
                .read(move |c| {
                    FileRow::wanting_thumbnails(c, &page_wanted, page_after.as_ref(), PAGE)
                })
                .await?;
            let Some(last) = page.last() else {
                break;
            };
            after = Some(last.id.clone());
            for file in page {
                bar.inc(1);
                let Some(storage) = storages.get(&file.storage) else {
                    failed += 1;
                    say(format!(
                        "FAILED {} {}: its storage `{}` is not configured",
                        file.id, file.original_name, file.storage
                    ));
                    continue;
                };
                match thumbnailer.make(&db, storage, &file).await {
                    Ok(rendered) => {
                        made += 1;
                        say(format!(
                            "made {} {} ({}×{})",
                            file.id, file.original_name, rendered.width, rendered.height
                        ));
                    }
                    Err(e) if e.is_skip() => {
                        skipped += 1;
                        say(format!("skipped {} {}: {e}", file.id, file.original_name));
                    }
                    Err(e) => {
                        failed += 1;
                        say(format!("FAILED {} {}: {e}", file.id, file.original_name));
                    }
                }
            }
        }
        Ok::<(), CliError>(())
    })?;
    bar.finish_and_clear();
    lines.print(&format!(
        "thumbnails: {made} made, {failed} failed, {skipped} skipped"
    ));
    if failed > 0 {
        return Err(CliError::Thumbnails(failed));
    }
    Ok(())
}
