//! `private-media upload`: files from disk stored exactly as the admin upload stores them,
//! as a staff user, one line per file; refusals reported without stopping the others.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use private_media::domain::{AccessRule, Role};
use reqwest::StatusCode;

use crate::audit_log::events;
use crate::helpers::{PNG, TestApp, cli_command, spawn_app, text};

fn write(dir: &std::path::Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

fn upload(app: &TestApp, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut all = vec!["upload"];
    all.extend_from_slice(args);
    let output = app.cli_with_env(&all, env);
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_stored_as_the_admin_stores_them() {
    let app = spawn_app().await;
    app.add_user("staffer", Role::Staff);
    let reader = app.logged_in("reader", Role::User).await;
    let dir = tempfile::tempdir().unwrap();
    let notes = write(dir.path(), "notes.txt", b"hello from the command line");
    let resume = write(dir.path(), "résumé final.txt", b"a second file");
    let (code, stdout, stderr) = upload(
        &app,
        &[
            &notes,
            &resume,
            "--access",
            "authenticated",
            "--title",
            "Docs",
            "--as",
            "staffer",
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("stored {notes}: ")),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!("stored {resume}: ")),
        "{stdout}"
    );
    assert_eq!(lines[2], "uploaded 2 of 2 file(s): 0 refused, 0 failed");

    let rows = app.file_rows();
    assert_eq!(rows.len(), 2);
    let row = rows
        .iter()
        .find(|r| r.original_name == "résumé final.txt")
        .unwrap();
    assert!(row.storage_key.is_ascii_safe(), "{}", row.storage_key);
    assert!(row.storage_key.as_str().ends_with("resume_final.txt"));
    assert_eq!(row.title, "Docs (résumé final.txt)");
    assert_eq!(row.content_type, "text/plain");
    assert_eq!(row.storage, "local");
    assert!(lines[1].contains(row.id.as_str()), "{stdout}");
    let response = reader.get(&format!("/files/{}/download", row.id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"a second file");

    let uploads: Vec<_> = events(&app)
        .into_iter()
        .filter(|e| e.event == "upload")
        .collect();
    assert_eq!(uploads.len(), 2);
    assert!(
        uploads
            .iter()
            .all(|e| e.username.as_deref() == Some("staffer"))
    );
    assert!(uploads.iter().all(|e| e.route.as_deref() == Some("cli")));
    assert!(app.temp_files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_readers_and_folders() {
    let app = spawn_app().await;
    app.add_user("staffer", Role::Staff);
    app.add_user("bob", Role::User);
    let carol = app.logged_in("carol", Role::User).await;
    let dave = app.logged_in("dave", Role::User).await;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tree/a.txt", b"a");
    write(dir.path(), "tree/deeper/b.txt", b"b");
    let tree = dir.path().join("tree");
    let tree = tree.to_str().unwrap();

    // A folder needs --recursive; the refusal is a line and exit 1.
    let (code, stdout, _) = upload(&app, &[tree, "--as", "staffer"], &[]);
    assert_eq!(code, Some(1));
    assert!(stdout.contains("--recursive"), "{stdout}");
    assert!(app.file_rows().is_empty());

    let (code, stdout, stderr) = upload(
        &app,
        &[
            tree,
            "--recursive",
            "--owner",
            "bob",
            "--access",
            "users",
            "--user",
            "carol",
            "--as",
            "staffer",
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let rows = app.file_rows();
    assert_eq!(rows.len(), 2, "{stdout}");
    for row in &rows {
        let url = format!("/files/{}/download", row.id);
        assert_eq!(carol.get(&url).await.status(), StatusCode::OK);
        assert_eq!(dave.get(&url).await.status(), StatusCode::FORBIDDEN);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_files_are_reported_and_do_not_stop_the_others() {
    let app = spawn_app().await;
    app.add_user("staffer", Role::Staff);
    let dir = tempfile::tempdir().unwrap();
    let big = write(dir.path(), "big.png", &[PNG, &[0u8; 4096]].concat());
    let page = write(
        dir.path(),
        "page.png",
        b"<!doctype html><script>alert(1)</script>",
    );
    let fine = write(dir.path(), "fine.png", PNG);
    let empty = write(dir.path(), "empty.png", b"");
    let missing = dir.path().join("missing.png");
    let missing = missing.to_str().unwrap();
    let env = [
        ("PRIVATE_MEDIA_UPLOAD__MAX_FILE_SIZE", "1KiB"),
        ("PRIVATE_MEDIA_UPLOAD__CONTENT_TYPES", "[\"image/*\"]"),
    ];
    let (code, stdout, stderr) = upload(
        &app,
        &[&big, &page, missing, &fine, &empty, "--as", "staffer"],
        &env,
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("refused {big}: too large")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "refused {page}: files of type text/html are not allowed"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("refused {missing}: cannot read it")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("refused {empty}: the file is empty")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("stored {fine}: ")), "{stdout}");
    assert!(
        stdout.contains("uploaded 1 of 5 file(s): 4 refused, 0 failed"),
        "{stdout}"
    );
    assert!(stderr.contains("4 of 5 files failed"), "{stderr}");
    let rows = app.file_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].content_type, "image/png");
    // The image and its two thumbnails.
    let objects = app.stored_objects();
    assert_eq!(
        objects.iter().filter(|o| !o.contains(".thumbs/")).count(),
        1,
        "{objects:?}"
    );
    assert!(app.temp_files().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_and_where_are_checked_before_anything_is_stored() {
    let app = spawn_app().await;
    app.add_user("staffer", Role::Staff);
    app.add_user("plain", Role::User);
    app.add_user("gone", Role::Staff);
    assert!(
        app.cli(&["user", "deactivate", "gone"], None)
            .status
            .success()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "a.txt", b"a");
    for (args, expected) in [
        (
            vec![file.as_str(), "--as", "nobody"],
            "no user named `nobody`",
        ),
        (vec![file.as_str(), "--as", "plain"], "`plain` is not staff"),
        (vec![file.as_str(), "--as", "gone"], "`gone` is inactive"),
        (
            vec![file.as_str(), "--as", "staffer", "--storage", "nowhere"],
            "no storage named `nowhere`",
        ),
        (
            vec![file.as_str(), "--as", "staffer", "--owner", "nobody"],
            "no user named `nobody`",
        ),
        (
            vec![file.as_str(), "--as", "staffer", "--user", "plain"],
            "--user needs --access users",
        ),
        (
            vec![
                file.as_str(),
                "--as",
                "staffer",
                "--access",
                "users",
                "--user",
                "nobody",
            ],
            "no user named `nobody`",
        ),
    ] {
        let (code, stdout, stderr) = upload(&app, &args, &[]);
        assert_eq!(code, Some(1), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    // Bad flags are clap's usage errors.
    for args in [
        vec![file.as_str()],
        vec![file.as_str(), "--as", "staffer", "--access", "everyone"],
        vec!["--as", "staffer"],
        vec![file.as_str(), "--as", "staffer", "--bogus"],
    ] {
        let (code, _, stderr) = upload(&app, &args, &[]);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
    }
    app.assert_nothing_stored();
}

/// Run again (after a stop half-way, say), the upload skips what the owner already has by
/// that name and content, and stores what is new or changed; `--again` stores all anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_skips_what_is_already_stored() {
    let app = spawn_app().await;
    app.add_user("staffer", Role::Staff);
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.txt", b"first");
    let b = write(dir.path(), "b.txt", b"second");
    let (code, stdout, _) = upload(&app, &[&a, "--as", "staffer"], &[]);
    assert_eq!(code, Some(0), "{stdout}");
    std::fs::write(&a, b"first, changed").unwrap();
    let c = write(dir.path(), "c.txt", b"first");
    let (code, stdout, stderr) = upload(&app, &[&a, &b, &c, "--as", "staffer"], &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("stored {a}: ")),
        "changed content: {stdout}"
    );
    assert!(stdout.contains(&format!("stored {b}: ")), "{stdout}");
    assert!(
        stdout.contains(&format!("stored {c}: ")),
        "same content, other name: {stdout}"
    );
    let (code, stdout, _) = upload(&app, &[&a, &b, &c, "--as", "staffer"], &[]);
    assert_eq!(code, Some(0), "{stdout}");
    let skipped = stdout.lines().filter(|l| l.starts_with("skipped ")).count();
    assert_eq!(skipped, 3, "{stdout}");
    assert!(stdout.contains("already stored as "), "{stdout}");
    assert!(
        stdout.contains("uploaded 0 of 3 file(s): 0 refused, 0 failed, 3 skipped (already stored)"),
        "{stdout}"
    );
    assert_eq!(app.file_rows().len(), 4);
    let (code, stdout, _) = upload(&app, &[&b, "--again", "--as", "staffer"], &[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains(&format!("stored {b}: ")), "{stdout}");
    assert_eq!(app.file_rows().len(), 5);
}

/// The rerun skip only skips a file stored exactly as this command would store it: a rerun
/// with a stricter rule, other readers or another storage stores a new copy (and says that an
/// earlier one has other settings), and leaves the earlier copy as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_with_other_settings_stores_a_new_copy() {
    let app = spawn_app().await;
    app.add_user("staffer", Role::Staff);
    app.add_user("carol", Role::User);
    let dave = app.logged_in("dave", Role::User).await;
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "payslip.txt", b"salary: secret");
    let archive = dir.path().join("archive");
    std::fs::create_dir_all(&archive).unwrap();
    let archive = archive.to_str().unwrap();
    let env = [
        ("PRIVATE_MEDIA_STORAGES__ARCHIVE__KIND", "filesystem"),
        ("PRIVATE_MEDIA_STORAGES__ARCHIVE__ROOT", archive),
    ];
    let run = |extra: &[&str]| {
        let mut args = vec![a.as_str(), "--as", "staffer"];
        args.extend_from_slice(extra);
        let (code, stdout, stderr) = upload(&app, &args, &env);
        assert_eq!(code, Some(0), "{extra:?}: {stdout}{stderr}");
        stdout
    };
    let stored = |stdout: &str, extra: &[&str]| {
        assert!(
            stdout.starts_with(&format!("stored {a}: ")),
            "{extra:?}: {stdout}"
        );
        assert!(
            stdout.contains("(an earlier copy has other settings: ")
                || stdout.contains(" earlier copies have other settings: the newest, "),
            "{extra:?}: {stdout}"
        );
    };
    let skipped = |stdout: &str, extra: &[&str]| {
        assert!(
            stdout.starts_with(&format!("skipped {a}: already stored as ")),
            "{extra:?}: {stdout}"
        );
    };

    let stdout = run(&["--access", "authenticated"]);
    assert!(stdout.starts_with(&format!("stored {a}: ")), "{stdout}");
    assert!(!stdout.contains("earlier copy"), "{stdout}");
    let first = app.file_rows().pop().unwrap();
    assert_eq!(first.rule, AccessRule::Authenticated);

    // Stricter: a new copy under the new rule; the first one is not changed behind the back.
    let stdout = run(&["--access", "owner"]);
    stored(&stdout, &["--access", "owner"]);
    assert!(
        stdout.contains(&format!(
            "(an earlier copy has other settings: {} has access `authenticated`)",
            first.id
        )),
        "{stdout}"
    );
    let rows = app.file_rows();
    assert_eq!(rows.len(), 2);
    let strict = rows.iter().find(|r| r.id != first.id).unwrap();
    assert_eq!(strict.rule, AccessRule::Owner);
    let url = format!("/files/{}/download", strict.id);
    assert_eq!(dave.get(&url).await.status(), StatusCode::FORBIDDEN);
    let old = rows.iter().find(|r| r.id == first.id).unwrap();
    assert_eq!(old.rule, AccessRule::Authenticated);
    // Now it is stored so: skipped.
    skipped(&run(&["--access", "owner"]), &["--access", "owner"]);

    // The readers count as part of the rule.
    let carol = ["--access", "users", "--user", "carol"];
    stored(&run(&carol), &carol);
    let dave_too = ["--access", "users", "--user", "carol", "--user", "dave"];
    let stdout = run(&dave_too);
    stored(&stdout, &dave_too);
    assert!(stdout.contains("other readers"), "{stdout}");
    skipped(&run(&carol), &carol);
    skipped(&run(&dave_too), &dave_too);

    // So does the storage.
    let elsewhere = ["--access", "owner", "--storage", "archive"];
    let stdout = run(&elsewhere);
    stored(&stdout, &elsewhere);
    assert!(stdout.contains("has storage `local`"), "{stdout}");
    skipped(&run(&elsewhere), &elsewhere);

    let rows = app.file_rows();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows.iter().filter(|r| r.storage == "archive").count(), 1);
    let uploads = events(&app)
        .into_iter()
        .filter(|e| e.event == "upload")
        .count();
    assert_eq!(uploads, 5);
}

/// `upload a b c | true`: stdout closes before the first line. Every file is still stored,
/// each with its `upload` event, and the command does not panic (exit 101) on the pipe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_stops_the_lines_not_the_upload() {
    let app = spawn_app().await;
    app.add_user("staffer", Role::Staff);
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<String> = ["a.txt", "b.txt", "c.txt"]
        .iter()
        .map(|name| write(dir.path(), name, name.as_bytes()))
        .collect();
    let mut args = vec!["upload", "--as", "staffer"];
    args.extend(paths.iter().map(String::as_str));
    let output = closed_stdout(&app, &args);
    let stderr = text(&output.stderr);
    assert_ne!(output.status.code(), Some(101), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("stdout is closed"), "{stderr}");
    let rows = app.file_rows();
    assert_eq!(rows.len(), 3);
    let uploads: Vec<_> = events(&app)
        .into_iter()
        .filter(|e| e.event == "upload")
        .collect();
    assert_eq!(uploads.len(), 3, "{uploads:?}");
    for row in &rows {
        assert!(
            uploads
                .iter()
                .any(|e| e.file_id.as_deref() == Some(row.id.as_str())),
            "no event for {}",
            row.id
        );
    }

    // The other commands that print a line per file share the printing.
    // (`import` finds the three files registered, a line each; `verify` prints its summary.)
    let root = app.storage_root();
    let root = root.to_str().unwrap();
    for args in [vec!["verify"], vec!["import", root, "--as", "staffer"]] {
        let output = closed_stdout(&app, &args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Runs the CLI with its stdout a pipe whose reading end is closed at once.
fn closed_stdout(app: &TestApp, args: &[&str]) -> std::process::Output {
    let mut command = cli_command(app.data_dir.path(), args);
    command
        .env("DATABASE_URL", app.database_url())
        .stdin(Stdio::null());
    let mut child = command.spawn().unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

/// Killed while it makes a file's thumbnails, the upload has already recorded the file's
/// `upload` event (it is written with the row, before the thumbnails), so the rerun that
/// skips the file does not leave it without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_the_thumbnails_leaves_the_event() {
    let app = spawn_app().await;
    app.add_user("staffer", Role::Staff);
    let dir = tempfile::tempdir().unwrap();
    let photo = write(dir.path(), "photo.png", PNG);
    let mut command = cli_command(app.data_dir.path(), &["upload", &photo, "--as", "staffer"]);
    command
        .env("DATABASE_URL", app.database_url())
        .env("PRIVATE_MEDIA_UPLOAD_STALL", "thumbnails")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let mut child = command.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    while let Ok(line) = said.recv_timeout(Duration::from_secs(60)) {
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("stalled") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen.contains("stalled"), "the upload never stalled: {seen}");

    let rows = app.file_rows();
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].thumbnails);
    let uploads: Vec<_> = events(&app)
        .into_iter()
        .filter(|e| e.event == "upload")
        .collect();
    assert_eq!(
        uploads.len(),
        1,
        "killed after its row, the file has no event"
    );
    assert_eq!(uploads[0].file_id.as_deref(), Some(rows[0].id.as_str()));

    // The rerun skips it, and records nothing twice.
    let (code, stdout, stderr) = upload(&app, &[&photo, "--as", "staffer"], &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.starts_with(&format!("skipped {photo}: ")),
        "{stdout}"
    );
    let uploads = events(&app)
        .into_iter()
        .filter(|e| e.event == "upload")
        .count();
    assert_eq!(uploads, 1);
}
