//! `private-media upload PATH...`: files stored exactly as the admin upload stores them
//! (`upload::receive`, then `upload::store_accepted_then`: the same size and type checks, keys
//! and rows, and an `upload` event, here written as soon as the row is), read from disk as a
//! stream, one file after another, as a staff user. A refused or failed file is reported and
//! the others go on. A rerun skips a file stored exactly as it would store it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::db::models::file::{FileRow, StoredCopy};
use crate::db::models::user::User;
use crate::domain::{AccessRule, FileId, UserId, Username};
use crate::upload::{self, Destination, ReceiveError, Refusal, StoreRequest, StoredFile};

use super::progress::Progress;
use super::{Context, failures, parse_rule};
use crate::cli::CliError;

/// Chunks read from a file at a time.
const READ_CHUNK: usize = 256 * 1024;

#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// Files, or folders with --recursive.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Upload the files in folders, and in their folders.
    #[arg(long)]
    recursive: bool,
    /// The title (default: the file's name; with several files, "T (name)").
    #[arg(long, value_name = "T", default_value = "")]
    title: String,
    /// Who may download: owner, staff, authenticated or users.
    #[arg(long, value_name = "RULE", value_parser = parse_rule, default_value = "owner")]
    access: AccessRule,
    /// Whose files they are (default: the --as user).
    #[arg(long, value_name = "USER")]
    owner: Option<String>,
    /// With --access users: a user who may download (once per user).
    #[arg(long = "user", value_name = "USER")]
    users: Vec<String>,
    /// The storage (default: `[upload] storage`).
    #[arg(long, value_name = "NAME")]
    storage: Option<String>,
    /// The active staff user who uploads.
    #[arg(long = "as", value_name = "USERNAME")]
    as_user: String,
    /// Store a file even when the owner already has one of that name and content (without
    /// it such a file is skipped, so a command stopped half-way can simply be run again).
    #[arg(long)]
    again: bool,
}

/// A path found, or why it is not uploaded.
enum Candidate {
    File(PathBuf),
    Refused(PathBuf, String),
}

pub fn run(ctx: &Context, args: UploadArgs) -> Result<(), CliError> {
    let uploader = ctx.staff_user(&args.as_user)?;
    let owner = match &args.owner {
        Some(name) => ctx.user(name)?,
        None => uploader.clone(),
    };
    let readers = readers(ctx, args.access, &args.users)?;
    let storage_name = args
        .storage
        .clone()
        .unwrap_or_else(|| ctx.settings.upload.storage.clone());
    let storage = ctx.storage(&storage_name)?;
    let destination = Destination {
        db: ctx.db.clone(),
        storage: Arc::clone(&storage),
        storage_name,
        upload_to: ctx.settings.upload.upload_to.clone(),
        thumbnails: thumbnailer(ctx)?,
    };
    let candidates = collect(&args.paths, args.recursive);
    let several = candidates.len() > 1;
    let progress = Progress::new(candidates.len(), "files");
    let (mut stored, mut refused, mut failed, mut skipped) = (0, 0, 0, 0);
    let rule_words = args.access.describe();
    let wanted = Wanted {
        storage: destination.storage_name.clone(),
        rule: args.access,
        readers: readers.iter().cloned().collect(),
    };
    super::block_on(async {
        ctx.reconcile().await;
        for candidate in &candidates {
            let path = match candidate {
                Candidate::Refused(path, reason) => {
                    refused += 1;
                    progress.line(&format!("refused {}: {reason}", path.display()));
                    progress.advance();
                    continue;
                }
                Candidate::File(path) => path,
            };
            let name = file_name(path);
            let mut earlier = Earlier::Nothing;
            if !args.again {
                match earlier_copies(ctx, path, &name, &owner).await {
                    Ok(copies) => earlier = compare(&copies, &wanted),
                    Err(error) => {
                        failed += 1;
                        progress.line(&format!("failed {}: {error}", path.display()));
                        progress.advance();
                        continue;
                    }
                }
            }
            if let Earlier::Same(id) = &earlier {
                skipped += 1;
                progress.line(&format!(
                    "skipped {}: already stored as {id}",
                    path.display()
                ));
                progress.advance();
                continue;
            }
            let request = StoreRequest {
                title: upload::title_for(&args.title, &name, several),
                name: name.clone(),
                owner: owner.clone(),
                uploader: uploader.clone(),
                rule: args.access,
                readers: readers.clone(),
            };
            // Recorded by the store itself as soon as the row is written (before the
            // thumbnails, before the line): a kill or a closed stdout later on cannot leave
            // the file without its event, which a rerun that skips it would never add.
            let (audit, actor, event_name) = (ctx.audit.clone(), uploader.clone(), name.clone());
            let record = move |file: &StoredFile| {
                super::record_in(&audit, "upload", Some(&actor), |e| {
                    e.file_id = Some(file.id.to_string());
                    e.file_name = Some(event_name);
                    e.storage_key = Some(file.key.to_string());
                    e.detail = Some(format!(
                        "title “{}”; who may download: {rule_words}",
                        file.title
                    ));
                });
            };
            match upload_one(ctx, &destination, path, request, record).await {
                Ok(Ok(file)) => {
                    stored += 1;
                    progress.line(&format!(
                        "stored {}: {} ({}:{}){}",
                        path.display(),
                        file.id,
                        destination.storage_name,
                        file.key,
                        earlier.note()
                    ));
                }
                Ok(Err(refusal)) => {
                    refused += 1;
                    progress.line(&format!("refused {}: {}", path.display(), refusal.reason()));
                }
                Err(error) => {
                    failed += 1;
                    progress.line(&format!("failed {}: {error}", path.display()));
                }
            }
            progress.advance();
        }
    });
    let skipped = if skipped > 0 {
        format!(", {skipped} skipped (already stored)")
    } else {
        String::new()
    };
    progress.finish(&format!(
        "uploaded {stored} of {} file(s): {refused} refused, {failed} failed{skipped}",
        candidates.len()
    ));
    failures(refused + failed, candidates.len(), "files")
}

/// The owner's files of this name and content, newest first (the file is read once to hash
/// it, in bounded chunks).
async fn earlier_copies(
    ctx: &Context,
    path: &Path,
    name: &str,
    owner: &User,
) -> Result<Vec<StoredCopy>, String> {
    use sha2::{Digest, Sha256};
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("cannot read it: {e}"))?;
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = file
            .read(&mut chunk)
            .await
            .map_err(|e| format!("cannot read it: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&chunk[..n]);
    }
    let sha256 = hex::encode(hasher.finalize());
    let (name, owner) = (name.to_owned(), owner.id.clone());
    ctx.db
        .read(move |c| FileRow::stored_copies(c, &sha256, &name, &owner))
        .await
        .map_err(|e| e.to_string())
}

/// What this command stores a file with, besides its owner, name and content.
struct Wanted {
    storage: String,
    rule: AccessRule,
    readers: BTreeSet<UserId>,
}

/// What a rerun found of a file before storing it.
#[derive(Debug, PartialEq)]
enum Earlier {
    /// No file of the owner has this name and content (or `--again`).
    Nothing,
    /// One is stored exactly as this command would store it: the file is skipped.
    Same(FileId),
    /// Some are, but with another storage, rule or readers: a new copy is stored, the earlier
    /// ones are left as they are (a rerun must not widen or narrow who reads a stored file
    /// behind the admin's back), and the line says so. `newest` is the one described.
    Other {
        copies: usize,
        newest: FileId,
        differences: Vec<String>,
    },
}

impl Earlier {
    /// What the `stored` line adds.
    fn note(&self) -> String {
        match self {
            Earlier::Other {
                copies,
                newest,
                differences,
            } => {
                let differences = differences.join(", ");
                if *copies == 1 {
                    format!(" (an earlier copy has other settings: {newest} has {differences})")
                } else {
                    format!(
                        " ({copies} earlier copies have other settings: the newest, {newest}, has {differences})"
                    )
                }
            }
            Earlier::Nothing | Earlier::Same(_) => String::new(),
        }
    }
}

/// Skipped only when a copy matches everything this command would store: its storage, its
/// rule and its readers (the whole list, whatever the rule, as `FileRow::insert` stores it: a
/// skip says the file is stored as asked, not merely readable by the same people today).
fn compare(copies: &[StoredCopy], wanted: &Wanted) -> Earlier {
    if let Some(same) = copies.iter().find(|c| differences(c, wanted).is_empty()) {
        return Earlier::Same(same.id.clone());
    }
    match copies.first() {
        None => Earlier::Nothing,
        Some(newest) => Earlier::Other {
            copies: copies.len(),
            newest: newest.id.clone(),
            differences: differences(newest, wanted),
        },
    }
}

fn differences(copy: &StoredCopy, wanted: &Wanted) -> Vec<String> {
    let mut differences = Vec::new();
    if copy.storage != wanted.storage {
        differences.push(format!("storage `{}`", copy.storage));
    }
    if copy.rule != wanted.rule {
        differences.push(format!("access `{}`", copy.rule.as_str()));
    } else if copy.readers != wanted.readers {
        differences.push("other readers".to_owned());
    }
    differences
}

/// Streams one file into the storage and stores it, or says why not.
async fn upload_one(
    ctx: &Context,
    destination: &Destination,
    path: &Path,
    request: StoreRequest,
    record: impl FnOnce(&StoredFile) + 'static,
) -> Result<Result<StoredFile, Refusal>, String> {
    let policy = &ctx.settings.upload;
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("cannot read it: {e}"))?;
    // Refused before a byte is read, as `receive` would refuse it at the limit.
    let size = file.metadata().await.map_err(|e| e.to_string())?.len();
    if size > policy.max_file_size {
        return Ok(Err(Refusal::TooLarge {
            limit: policy.max_file_size,
        }));
    }
    let mut body = tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK);
    let received = match upload::receive(
        &mut body,
        &request.name,
        destination.storage.as_ref(),
        policy,
    )
    .await
    {
        Ok(Ok(received)) => received,
        Ok(Err(refusal)) => return Ok(Err(refusal)),
        // The file grew past the limit while it was read.
        Err(ReceiveError::CutOff(limit)) => return Ok(Err(Refusal::TooLarge { limit })),
        Err(e) => return Err(e.to_string()),
    };
    upload::store_accepted_then(destination, received, request, record)
        .await
        .map(Ok)
        .map_err(|e| e.to_string())
}

/// The thumbnailer, told to stall for the tests by `PRIVATE_MEDIA_UPLOAD_STALL=thumbnails`
/// (README: "upload").
fn thumbnailer(ctx: &Context) -> Result<crate::thumbnails::Thumbnailer, CliError> {
    let thumbnailer = crate::thumbnails::Thumbnailer::from_settings(&ctx.settings);
    match std::env::var("PRIVATE_MEDIA_UPLOAD_STALL") {
        Ok(value) if value == "thumbnails" => Ok(thumbnailer.stalled()),
        Ok(value) => Err(CliError::Input(format!(
            "PRIVATE_MEDIA_UPLOAD_STALL: “{value}” is not thumbnails"
        ))),
        Err(_) => Ok(thumbnailer),
    }
}

/// The readers for `--access users`; none for the other rules (where `--user` is refused).
fn readers(ctx: &Context, rule: AccessRule, names: &[String]) -> Result<Vec<UserId>, CliError> {
    if rule != AccessRule::Users {
        if !names.is_empty() {
            return Err(CliError::Input("--user needs --access users".into()));
        }
        return Ok(Vec::new());
    }
    let mut wanted = names
        .iter()
        .map(|n| Username::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    wanted.sort();
    wanted.dedup();
    let found = User::find_many(&mut *ctx.db.get()?, &wanted)?;
    if let Some(missing) = wanted
        .iter()
        .find(|n| !found.iter().any(|u| u.username == **n))
    {
        return Err(CliError::Input(format!(
            "there is no user named `{missing}`"
        )));
    }
    Ok(found.into_iter().map(|u| u.id).collect())
}

/// The name a file is stored under: its last component, without control characters (as the
/// admin cleans a browser's file name).
fn file_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned()
}

/// The files named, folders walked when `recursive` (sorted; symlinks inside them are not
/// followed), with what cannot be uploaded reported.
fn collect(paths: &[PathBuf], recursive: bool) -> Vec<Candidate> {
    let mut found = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Err(e) => found.push(Candidate::Refused(
                path.clone(),
                format!("cannot read it: {e}"),
            )),
            Ok(meta) if meta.is_file() => found.push(Candidate::File(path.clone())),
            Ok(meta) if meta.is_dir() && recursive => walk(path, &mut found),
            Ok(meta) if meta.is_dir() => found.push(Candidate::Refused(
                path.clone(),
                "a folder (use --recursive to upload what it holds)".into(),
            )),
            Ok(_) => found.push(Candidate::Refused(
                path.clone(),
                "not a regular file".into(),
            )),
        }
    }
    found
}

fn walk(dir: &Path, found: &mut Vec<Candidate>) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) => {
            found.push(Candidate::Refused(
                dir.to_owned(),
                format!("cannot read it: {e}"),
            ));
            return;
        }
    };
    entries.sort();
    for path in entries {
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => found.push(Candidate::File(path)),
            Ok(meta) if meta.is_dir() => walk(&path, found),
            Ok(meta) if meta.file_type().is_symlink() => {
                found.push(Candidate::Refused(path, "a symlink (not followed)".into()))
            }
            Ok(_) => found.push(Candidate::Refused(path, "not a regular file".into())),
            Err(e) => found.push(Candidate::Refused(path, format!("cannot read it: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(storage: &str, rule: AccessRule, readers: &[&UserId]) -> StoredCopy {
        StoredCopy {
            id: FileId::generate(),
            storage: storage.to_owned(),
            rule,
            readers: readers.iter().map(|r| (*r).clone()).collect(),
        }
    }

    fn wanted(storage: &str, rule: AccessRule, readers: &[&UserId]) -> Wanted {
        Wanted {
            storage: storage.to_owned(),
            rule,
            readers: readers.iter().map(|r| (*r).clone()).collect(),
        }
    }

    #[test]
    fn only_a_copy_stored_exactly_so_is_skipped() {
        let (carol, dave) = (UserId::generate(), UserId::generate());
        let owner_only = wanted("local", AccessRule::Owner, &[]);
        assert_eq!(compare(&[], &owner_only), Earlier::Nothing);

        let open = copy("local", AccessRule::Authenticated, &[]);
        let Earlier::Other {
            copies,
            newest,
            differences,
        } = compare(std::slice::from_ref(&open), &owner_only)
        else {
            panic!("a stricter rule is not the same file");
        };
        assert_eq!((copies, &newest), (1, &open.id));
        assert_eq!(differences, ["access `authenticated`"]);

        // Any one copy that matches is enough, whichever is newest.
        let strict = copy("local", AccessRule::Owner, &[]);
        assert_eq!(
            compare(&[open.clone(), strict.clone()], &owner_only),
            Earlier::Same(strict.id.clone())
        );

        let to_carol = copy("local", AccessRule::Users, &[&carol]);
        let both = wanted("local", AccessRule::Users, &[&carol, &dave]);
        assert!(matches!(
            compare(std::slice::from_ref(&to_carol), &both),
            Earlier::Other { differences, .. } if differences == ["other readers"]
        ));
        let just_carol = wanted("local", AccessRule::Users, &[&carol]);
        assert_eq!(
            compare(std::slice::from_ref(&to_carol), &just_carol),
            Earlier::Same(to_carol.id.clone())
        );
        // A list of readers left on a row of another rule counts too.
        let stale = copy("local", AccessRule::Owner, &[&dave]);
        assert!(matches!(
            compare(&[stale], &owner_only),
            Earlier::Other { .. }
        ));

        let elsewhere = wanted("archive", AccessRule::Authenticated, &[]);
        let note = compare(&[open.clone(), to_carol], &elsewhere).note();
        assert_eq!(
            note,
            format!(
                " (2 earlier copies have other settings: the newest, {}, has storage `local`)",
                open.id
            )
        );
    }
}
