//! `private-media import DIR`: the files under DIR, a folder of a filesystem storage's root,
//! registered as rows that keep their keys (`operations::import`), one line each.

use std::path::PathBuf;

use crate::config::StorageSettings;
use crate::domain::AccessRule;
use crate::operations::import::{self, ImportRequest, Imported};

use super::progress::Progress;
use super::{Context, failures, parse_rule};
use crate::cli::CliError;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The folder to import: the storage's root, or a folder inside it.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The filesystem storage whose root holds DIR.
    #[arg(long, value_name = "NAME", default_value = crate::config::DEFAULT_STORAGE)]
    storage: String,
    /// Who may download the imported files: owner, staff, authenticated or users.
    #[arg(long, value_name = "RULE", value_parser = parse_rule, default_value = "owner")]
    access: AccessRule,
    /// Whose files they are (default: the --as user).
    #[arg(long, value_name = "USER")]
    owner: Option<String>,
    /// The active staff user who imports.
    #[arg(long = "as", value_name = "USERNAME")]
    as_user: String,
}

pub fn run(ctx: &Context, args: ImportArgs) -> Result<(), CliError> {
    let importer = ctx.staff_user(&args.as_user)?;
    let owner = match &args.owner {
        Some(name) => ctx.user(name)?,
        None => importer.clone(),
    };
    let storage = ctx.storage(&args.storage)?;
    let under = folder_in_root(ctx, &args.storage, &args.dir)?;
    let request = ImportRequest {
        storage_name: args.storage.clone(),
        owner,
        importer: importer.clone(),
        rule: args.access,
    };
    let (mut registered, mut known, mut refused, mut failed, mut total) = (0, 0, 0, 0, 0);
    super::block_on(async {
        ctx.reconcile().await;
        let entries = import::entries(storage.as_ref(), &under)
            .await
            .map_err(|e| CliError::Input(format!("cannot list {}: {e}", args.dir.display())))?;
        total = entries.len();
        let progress = Progress::new(total, "files");
        for entry in entries {
            let shown = match &entry {
                crate::storage::Listed::Object { key, .. } => key.to_string(),
                crate::storage::Listed::Unusable { name, .. } => name.escape_debug().to_string(),
            };
            match import::import_one(&ctx.db, storage.as_ref(), &request, entry).await {
                Ok(Imported::Registered(file)) => {
                    registered += 1;
                    // The event before the line, as `upload` does: the row is the change.
                    ctx.record("upload", Some(&importer), |e| {
                        e.file_id = Some(file.id.to_string());
                        e.file_name = Some(file.original_name.clone());
                        e.storage_key = Some(file.storage_key.to_string());
                        e.detail = Some(format!(
                            "imported from the storage `{}`; who may download: {}",
                            file.storage,
                            file.rule.describe()
                        ));
                    });
                    progress.line(&format!("imported {shown}: {}", file.id));
                }
                Ok(Imported::AlreadyKnown(_)) => {
                    known += 1;
                    progress.line(&format!("skipped {shown}: already registered"));
                }
                Ok(Imported::Thumbnail(_)) => {
                    known += 1;
                    progress.line(&format!(
                        "skipped {shown}: a thumbnail of a registered file"
                    ));
                }
                Ok(Imported::Unusable { reason, .. }) => {
                    refused += 1;
                    progress.line(&format!("refused {shown}: {reason}"));
                }
                Err(e) => {
                    failed += 1;
                    progress.line(&format!("failed {shown}: {e}"));
                }
            }
            progress.advance();
        }
        progress.finish(&format!(
            "imported {registered} of {total} file(s): {known} already registered, {refused} refused, {failed} failed"
        ));
        Ok::<(), CliError>(())
    })?;
    failures(refused + failed, total, "files")
}

/// DIR as a folder of the storage's root (`""`: the root itself); an error unless the
/// storage is a filesystem one and DIR lies inside its root.
fn folder_in_root(ctx: &Context, name: &str, dir: &std::path::Path) -> Result<String, CliError> {
    let Some(StorageSettings::Filesystem { root }) = ctx.settings.storages.get(name) else {
        return Err(CliError::Input(format!(
            "the storage `{name}` is not a filesystem storage: import registers files that lie in a folder"
        )));
    };
    let canonical = |path: &std::path::Path| {
        path.canonicalize()
            .map_err(|e| CliError::Input(format!("cannot open {}: {e}", path.display())))
    };
    let (root, dir_path) = (canonical(root)?, canonical(dir)?);
    if !dir_path.is_dir() {
        return Err(CliError::Input(format!(
            "{} is not a folder",
            dir.display()
        )));
    }
    let inside = dir_path.strip_prefix(&root).map_err(|_| {
        CliError::Input(format!(
            "{} is not inside the root of the storage `{name}` ({}): point `[storages.{name}] root` at it",
            dir.display(),
            root.display()
        ))
    })?;
    inside
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| CliError::Input(format!("{} is not a UTF-8 path", dir.display())))
}
