//! `private-media upload`: files from disk stored exactly as the admin upload stores them,
//! as a staff user, one line per file; refusals reported without stopping the others.

use private_media::domain::Role;
use reqwest::StatusCode;

use crate::audit_log::events;
use crate::helpers::{PNG, TestApp, spawn_app, text};

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
