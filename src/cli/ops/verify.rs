//! `private-media verify`: every row's object read back against the row, every object looked
//! up for its row (`operations::verify`); one line per problem, or one JSON document.

use serde::Serialize;

use crate::db::models::file::FileRow;
use crate::domain::FileId;
use crate::operations::verify::{self, Finding};

use super::Context;
use super::progress::Progress;
use crate::cli::{CliError, ListFormat};

/// Rows read from the database at a time.
const PAGE: i64 = 500;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Only this storage (default: every configured one).
    #[arg(long, value_name = "NAME")]
    storage: Option<String>,
    /// `text` (a line per problem and a summary) or `json` (one object; README: "verify").
    #[arg(long, value_enum, default_value_t = ListFormat::Text)]
    format: ListFormat,
}

/// `verify --format json`.
#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    storages: Vec<String>,
    files_checked: usize,
    objects_listed: usize,
    problems: &'a [Finding],
}

pub fn run(ctx: &Context, args: VerifyArgs) -> Result<(), CliError> {
    let names: Vec<String> = match &args.storage {
        Some(name) => {
            ctx.storage(name)?;
            vec![name.clone()]
        }
        None => ctx.storages.names().map(str::to_owned).collect(),
    };
    let json = args.format == ListFormat::Json;
    let progress = Progress::new(0, "checked");
    let say = |finding: &Finding| {
        if !json {
            let file = finding
                .file
                .as_deref()
                .map(|id| format!(" (file {id})"))
                .unwrap_or_default();
            progress.line(&format!(
                "{} {}:{}{file}: {}",
                finding.problem,
                finding.storage,
                finding.key.escape_debug(),
                finding.detail
            ));
        }
    };
    let mut problems: Vec<Finding> = Vec::new();
    let (mut files, mut objects) = (0usize, 0usize);
    super::block_on(async {
        for name in &names {
            let storage = ctx.storage(name)?;
            let mut after: Option<FileId> = None;
            loop {
                let (storage_name, from) = (name.clone(), after.clone());
                let rows = ctx
                    .db
                    .read(move |c| FileRow::page_in_storage(c, &storage_name, from.as_ref(), PAGE))
                    .await?;
                let Some(last) = rows.last() else { break };
                after = Some(last.id.clone());
                progress.grow(rows.len());
                for row in &rows {
                    files += 1;
                    for finding in verify::check_row(name, storage.as_ref(), row).await {
                        say(&finding);
                        problems.push(finding);
                    }
                    progress.advance();
                }
            }
            let listed = storage
                .list("")
                .await
                .map_err(|e| CliError::Input(format!("cannot list the storage `{name}`: {e}")))?;
            progress.grow(listed.len());
            for entry in listed {
                objects += 1;
                match verify::check_listed(&ctx.db, name, entry).await {
                    Ok(Some(finding)) => {
                        say(&finding);
                        problems.push(finding);
                    }
                    Ok(None) => {}
                    Err(e) => return Err(CliError::Input(e.to_string())),
                }
                progress.advance();
            }
        }
        Ok::<(), CliError>(())
    })?;
    if json {
        let report = Report {
            ok: problems.is_empty(),
            storages: names.clone(),
            files_checked: files,
            objects_listed: objects,
            problems: &problems,
        };
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| CliError::Output(e.to_string()))?;
        progress.finish(&text);
    } else {
        let count = |kind: &str| problems.iter().filter(|f| f.problem == kind).count();
        progress.finish(&format!(
            "verified {files} file(s) and {objects} object(s) in {} storage(s): {} missing, {} corrupt, {} unreadable, {} orphan(s), {} unusable",
            names.len(),
            count("missing"),
            count("corrupt"),
            count("unreadable"),
            count("orphan"),
            count("unusable"),
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Input(format!(
            "{} problem(s) found",
            problems.len()
        )))
    }
}
