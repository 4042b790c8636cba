//! `private-media move`: files moved between a local folder and S3 (the S3 server the tests
//! start), downloads answered all along, a killed move finished by the next one with every
//! object there once, and a delete during a move winning over it.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use private_media::config::StorageSettings;
use private_media::db::models::file::FileRow;
use private_media::db::models::pending_upload::PendingKey;
use private_media::domain::Role;
use reqwest::StatusCode;

use crate::audit_log::events;
use crate::helpers::s3_server::{ACCESS_KEY, LOCATION, S3Server, SECRET_KEY};
use crate::helpers::{Browser, TestApp, cli_command, spawn_app_with, text, upload_file};

/// The environment that configures the storage `s3` for a CLI process, as the tests' app has it.
pub fn s3_env(server: &S3Server) -> Vec<(String, String)> {
    [
        ("PRIVATE_MEDIA_STORAGES__S3__KIND", "s3"),
        ("PRIVATE_MEDIA_STORAGES__S3__BUCKET", "media"),
        ("PRIVATE_MEDIA_STORAGES__S3__LOCATION", LOCATION),
        ("PRIVATE_MEDIA_STORAGES__S3__REGION", "us-east-1"),
        (
            "PRIVATE_MEDIA_STORAGES__S3__ENDPOINT",
            server.endpoint.as_str(),
        ),
        ("PRIVATE_MEDIA_STORAGES__S3__QUERYSTRING_AUTH", "false"),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// An app with its local folder (where uploads go) and the S3 storage `s3` (proxied).
async fn two_storage_app(server: &S3Server) -> TestApp {
    let s3 = server.settings(false);
    spawn_app_with(|s| {
        s.storages.insert("s3".to_owned(), StorageSettings::S3(s3));
    })
    .await
}

fn run(app: &TestApp, server: &S3Server, args: &[&str]) -> (Option<i32>, String, String) {
    let env = s3_env(server);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = app.cli_with_env(args, &env);
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// S3 objects under the storage's location, as keys.
fn s3_keys(server: &S3Server) -> Vec<String> {
    server
        .objects()
        .into_iter()
        .filter_map(|k| k.strip_prefix(&format!("{LOCATION}/")).map(str::to_owned))
        .collect()
}

fn pending(app: &TestApp) -> Vec<PendingKey> {
    PendingKey::all(&mut app.db.get().unwrap()).unwrap()
}

async fn assert_downloads(browser: &Browser, files: &[(FileRow, Vec<u8>)]) {
    for (file, body) in files {
        let response = browser.get(&format!("/files/{}/download", file.id)).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", file.id);
        assert_eq!(&response.bytes().await.unwrap()[..], &body[..]);
    }
}

async fn three_files(app: &TestApp, staff: &Browser) -> Vec<(FileRow, Vec<u8>)> {
    let mut files = Vec::new();
    for (name, body) in [
        ("a.txt", b"alpha".to_vec()),
        ("b.bin", (0..300_000u32).map(|i| (i % 251) as u8).collect()),
        ("c.txt", b"gamma".to_vec()),
    ] {
        let row = upload_file(app, staff, name, &body, "authenticated", None, &[]).await;
        files.push((row, body));
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_move_to_s3_and_back_while_downloads_go_on() {
    let server = S3Server::start().await;
    let app = two_storage_app(&server).await;
    let staff = app.logged_in("staffer", Role::Staff).await;
    let files = three_files(&app, &staff).await;

    // Downloads all through the move: every one must succeed with the right bytes.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let reader = app.logged_in("reader", Role::User).await;
    let looping = {
        let (stop, done, files) = (Arc::clone(&stop), Arc::clone(&done), files.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                assert_downloads(&reader, &files).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let (code, stdout, stderr) = {
        let env = s3_env(&server);
        let args = ["move", "--from", "local", "--to", "s3"].map(str::to_owned);
        let (dir, url) = (
            app.data_dir.path().to_owned(),
            app.database_url().to_owned(),
        );
        tokio::task::spawn_blocking(move || {
            let mut command =
                cli_command(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
            command.env("DATABASE_URL", url).envs(env);
            let output = command.output().unwrap();
            (
                output.status.code(),
                text(&output.stdout),
                text(&output.stderr),
            )
        })
        .await
        .unwrap()
    };
    stop.store(true, Ordering::Relaxed);
    looping.await.expect("no download failed during the move");
    assert!(done.load(Ordering::Relaxed) > 0);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    for (file, _) in &files {
        assert!(
            stdout.contains(&format!(
                "moved {}: local:{} → s3:{}",
                file.id, file.storage_key, file.storage_key
            )),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("moved 3 of 3 file(s) from `local` to `s3`: 0 failed"),
        "{stdout}"
    );
    assert!(app.file_rows().iter().all(|r| r.storage == "s3"));
    assert!(app.stored_objects().is_empty(), "the originals are gone");
    let mut keys: Vec<String> = files
        .iter()
        .map(|(f, _)| f.storage_key.to_string())
        .collect();
    keys.sort();
    assert_eq!(s3_keys(&server), keys);
    assert!(pending(&app).is_empty());
    let staff_browser = app.logged_in("second", Role::Staff).await;
    assert_downloads(&staff_browser, &files).await;
    let moved: Vec<_> = events(&app)
        .into_iter()
        .filter(|e| e.event == "moved")
        .collect();
    assert_eq!(moved.len(), 3);
    assert!(
        moved[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("from the storage `local`")
    );
    let (code, stdout, stderr) = run(&app, &server, &["verify"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    // One file back.
    let (one, _) = &files[0];
    let (code, stdout, stderr) = run(
        &app,
        &server,
        &[
            "move",
            "--from",
            "s3",
            "--to",
            "local",
            "--file",
            one.id.as_str(),
        ],
    );
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let rows = app.file_rows();
    let back = rows.iter().find(|r| r.id == one.id).unwrap();
    assert_eq!(back.storage, "local");
    assert_eq!(app.stored_objects(), vec![one.storage_key.to_string()]);
    assert_eq!(s3_keys(&server).len(), 2);
    assert_downloads(&staff_browser, &files).await;
}

/// Starts a move told to stall at `step` and kills it (SIGKILL) once it says it stalled.
fn killed_move(app: &TestApp, server: &S3Server, step: &str) -> String {
    let mut command = cli_command(
        app.data_dir.path(),
        &["move", "--from", "local", "--to", "s3"],
    );
    command
        .env("DATABASE_URL", app.database_url())
        .envs(s3_env(server))
        .env("PRIVATE_MEDIA_MOVE_STALL", step)
        .stdout(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, said) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let stalled = line.starts_with("stalled");
            let _ = sender.send(line);
            if stalled {
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
    assert!(seen.contains("stalled"), "the move never stalled: {seen}");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_killed_half_way_is_finished_by_the_next_with_every_object_once() {
    let server = S3Server::start().await;
    let app = two_storage_app(&server).await;
    let staff = app.logged_in("staffer", Role::Staff).await;
    let files = three_files(&app, &staff).await;

    // Killed after the first copy: the copy is in S3, the row still names the original.
    let server_ref = &server;
    let app_ref = &app;
    tokio::task::block_in_place(|| killed_move(app_ref, server_ref, "copied"));
    assert_eq!(s3_keys(&server).len(), 1, "the first copy");
    assert!(app.file_rows().iter().all(|r| r.storage == "local"));
    assert_eq!(app.stored_objects().len(), 3);
    assert_eq!(pending(&app).len(), 1, "the copy is journalled");
    assert_downloads(&staff, &files).await;

    // Run again, killed after the first switch this time: the original is still there.
    tokio::task::block_in_place(|| killed_move(app_ref, server_ref, "switched"));
    assert_eq!(
        app.file_rows().iter().filter(|r| r.storage == "s3").count(),
        1
    );
    assert_eq!(
        s3_keys(&server).len(),
        1,
        "the earlier copy went, the new one stays"
    );
    assert_eq!(
        app.stored_objects().len(),
        3,
        "the original waits to be removed"
    );
    assert_eq!(pending(&app).len(), 1, "the original is journalled");
    assert_downloads(&staff, &files).await;

    // And again, to the end.
    let (code, stdout, stderr) = tokio::task::block_in_place(|| {
        run(&app, &server, &["move", "--from", "local", "--to", "s3"])
    });
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("finished 1 step(s) a stopped move left"),
        "{stdout}"
    );
    assert!(stdout.contains("moved 2 of 2 file(s)"), "{stdout}");
    assert!(app.file_rows().iter().all(|r| r.storage == "s3"));
    assert!(
        app.stored_objects().is_empty(),
        "{:?}",
        app.stored_objects()
    );
    let mut keys: Vec<String> = files
        .iter()
        .map(|(f, _)| f.storage_key.to_string())
        .collect();
    keys.sort();
    assert_eq!(s3_keys(&server), keys, "each object exactly once");
    assert!(pending(&app).is_empty());
    assert_downloads(&staff, &files).await;
    let (code, stdout, stderr) = tokio::task::block_in_place(|| run(&app, &server, &["verify"]));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
}

/// A move that waits after its copy while the file is deleted (`replace: false`) or given new
/// content: the change wins, the copy goes, and nothing of the old content is left.
async fn a_change_during_the_move_wins(replace: bool) {
    let server = S3Server::start().await;
    let app = two_storage_app(&server).await;
    let staff = app.logged_in("staffer", Role::Staff).await;
    let file = upload_file(&app, &staff, "a.txt", b"alpha", "owner", None, &[]).await;
    let token = staff.csrf_token(&format!("/admin/files/{}", file.id)).await;

    let mut command = cli_command(
        app.data_dir.path(),
        &["move", "--from", "local", "--to", "s3"],
    );
    command
        .env("DATABASE_URL", app.database_url())
        .envs(s3_env(&server))
        .env("PRIVATE_MEDIA_MOVE_STALL", "copied:3000");
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = tokio::task::block_in_place(|| lines.next().unwrap().unwrap());
    assert!(first.starts_with("stalled"), "{first}");
    assert_eq!(s3_keys(&server).len(), 1, "the copy is there");
    if replace {
        let status = crate::replace_races::replace_now(&staff, &file.id, "b.txt", b"beta").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    } else {
        let deleted = staff
            .post_form(
                &format!("/admin/files/{}/delete", file.id),
                &[("csrf_token", token.as_str())],
            )
            .await;
        assert_eq!(deleted.status(), StatusCode::SEE_OTHER);
    }
    let rest: Vec<String> = tokio::task::block_in_place(|| lines.map_while(Result::ok).collect());
    let status = tokio::task::block_in_place(|| child.wait().unwrap());
    assert_eq!(status.code(), Some(1), "{rest:?}");
    let rest = rest.join("\n");
    assert!(
        rest.contains(&format!("skipped {}: it was replaced or deleted", file.id)),
        "{rest}"
    );
    assert!(s3_keys(&server).is_empty(), "the copy was removed");
    assert!(pending(&app).is_empty());
    if replace {
        let rows = app.file_rows();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].storage, "local");
        assert_eq!(app.stored_objects(), vec![rows[0].storage_key.to_string()]);
        assert_downloads(&staff, &[(rows[0].clone(), b"beta".to_vec())]).await;
    } else {
        assert!(app.stored_objects().is_empty());
        assert!(app.file_rows().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_during_the_move_wins_and_the_copy_goes() {
    a_change_during_the_move_wins(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replace_during_the_move_wins_and_the_copy_goes() {
    a_change_during_the_move_wins(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_moves_are_refused_clearly() {
    let server = S3Server::start().await;
    let app = two_storage_app(&server).await;
    let staff = app.logged_in("staffer", Role::Staff).await;
    let file = upload_file(&app, &staff, "a.txt", b"alpha", "owner", None, &[]).await;
    for (args, expected) in [
        (
            vec!["move", "--from", "local", "--to", "local"],
            "the same storage",
        ),
        (
            vec!["move", "--from", "local", "--to", "nowhere"],
            "no storage named `nowhere`",
        ),
        (
            vec!["move", "--from", "nowhere", "--to", "s3"],
            "no storage named `nowhere`",
        ),
        (
            vec![
                "move",
                "--from",
                "local",
                "--to",
                "s3",
                "--file",
                "not an id",
            ],
            "is not a file id",
        ),
    ] {
        let (code, stdout, stderr) = tokio::task::block_in_place(|| run(&app, &server, &args));
        assert_eq!(code, Some(1), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    // A file that is in --to already: nothing to do (a move run again after it finished).
    let (code, stdout, _) = tokio::task::block_in_place(|| {
        run(
            &app,
            &server,
            &[
                "move",
                "--from",
                "s3",
                "--to",
                "local",
                "--file",
                file.id.as_str(),
            ],
        )
    });
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("skipped {}: it is in `local` already", file.id)),
        "{stdout}"
    );
    let (code, _, _) = tokio::task::block_in_place(|| run(&app, &server, &["move", "--to", "s3"]));
    assert_eq!(code, Some(2));
    assert_eq!(app.file_rows()[0].storage, "local");
    assert!(s3_keys(&server).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_name_with_spaces_and_letters_moves_to_s3_and_back() {
    let server = S3Server::start().await;
    let app = two_storage_app(&server).await;
    app.add_user("staffer", Role::Staff);
    let reader = app.logged_in("reader", Role::Superuser).await;
    let key = "Grüße/März 2020.txt";
    let path = app.storage_root().join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"spring").unwrap();
    let root = app.storage_root();
    let (code, stdout, stderr) = tokio::task::block_in_place(|| {
        run(
            &app,
            &server,
            &["import", root.to_str().unwrap(), "--as", "staffer"],
        )
    });
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let file = app.file_rows().pop().unwrap();
    let body = vec![(file.clone(), b"spring".to_vec())];

    let (code, stdout, stderr) = tokio::task::block_in_place(|| {
        run(&app, &server, &["move", "--from", "local", "--to", "s3"])
    });
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(s3_keys(&server), vec![key.to_owned()]);
    assert_downloads(&reader, &body).await;
    let (code, stdout, stderr) = tokio::task::block_in_place(|| run(&app, &server, &["verify"]));
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    let (code, stdout, stderr) = tokio::task::block_in_place(|| {
        run(&app, &server, &["move", "--from", "s3", "--to", "local"])
    });
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(app.stored_objects(), vec![key.to_owned()]);
    let response = reader
        .get("/private-media/Gr%C3%BC%C3%9Fe/M%C3%A4rz%202020.txt")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"spring");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_move_between_two_folders_and_a_corrupt_one_stays() {
    let archive = tempfile::tempdir().unwrap();
    let archive_root = archive.path().to_owned();
    let app = spawn_app_with(|s| {
        s.storages.insert(
            "archive".to_owned(),
            StorageSettings::Filesystem {
                root: archive_root.clone(),
            },
        );
    })
    .await;
    let staff = app.logged_in("staffer", Role::Staff).await;
    let files = three_files(&app, &staff).await;
    let (bad, _) = &files[2];
    std::fs::write(app.storage_root().join(bad.storage_key.as_str()), b"gammA").unwrap();
    let root = archive_root.to_str().unwrap().to_owned();
    let env = [
        ("PRIVATE_MEDIA_STORAGES__ARCHIVE__KIND", "filesystem"),
        ("PRIVATE_MEDIA_STORAGES__ARCHIVE__ROOT", root.as_str()),
    ];
    let output = tokio::task::block_in_place(|| {
        app.cli_with_env(&["move", "--from", "local", "--to", "archive"], &env)
    });
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        text(&output.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "failed {}: its object differs from its row",
            bad.id
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("moved 2 of 3 file(s) from `local` to `archive`: 1 failed"),
        "{stdout}"
    );
    let rows = app.file_rows();
    assert_eq!(rows.iter().filter(|r| r.storage == "archive").count(), 2);
    assert_eq!(
        rows.iter().find(|r| r.id == bad.id).unwrap().storage,
        "local"
    );
    assert_eq!(app.stored_objects(), vec![bad.storage_key.to_string()]);
    for (file, body) in &files[..2] {
        let stored = std::fs::read(archive_root.join(file.storage_key.as_str())).unwrap();
        assert_eq!(&stored, body);
    }
    assert_downloads(&staff, &files[..2]).await;
    assert!(pending(&app).is_empty());
}

/// An image moved to another storage keeps its thumbnails: made again there, the old ones
/// removed with the original, and verify finds nothing wrong on either side.
#[tokio::test(flavor = "multi_thread")]
async fn a_moved_image_keeps_its_thumbnails_and_leaves_none_behind() {
    let archive = tempfile::tempdir().unwrap();
    let archive_root = archive.path().to_owned();
    let app = spawn_app_with(|s| {
        s.storages.insert(
            "archive".to_owned(),
            StorageSettings::Filesystem {
                root: archive_root.clone(),
            },
        );
    })
    .await;
    let staff = app.logged_in("staffer", Role::Staff).await;
    let png = crate::thumbnails::encoded(
        crate::thumbnails::picture(300, 200),
        image::ImageFormat::Png,
    );
    let file = upload_file(&app, &staff, "p.png", &png, "staff", None, &[]).await;
    let thumb = format!("/files/{}/thumbnail?size=small", file.id);
    assert_eq!(staff.get(&thumb).await.status(), StatusCode::OK);
    let root = archive_root.to_str().unwrap().to_owned();
    let env = [
        ("PRIVATE_MEDIA_STORAGES__ARCHIVE__KIND", "filesystem"),
        ("PRIVATE_MEDIA_STORAGES__ARCHIVE__ROOT", root.as_str()),
    ];
    let output = tokio::task::block_in_place(|| {
        app.cli_with_env(&["move", "--from", "local", "--to", "archive"], &env)
    });
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let moved = staff.get(&thumb).await;
    assert_eq!(moved.status(), StatusCode::OK);
    assert!(
        app.stored_objects().is_empty(),
        "{:?}",
        app.stored_objects()
    );
    assert!(
        archive_root
            .join(format!("{}.thumbs/small.jpg", file.storage_key))
            .exists()
    );
    for storage in ["local", "archive"] {
        let output = tokio::task::block_in_place(|| {
            app.cli_with_env(&["verify", "--storage", storage], &env)
        });
        let stdout = text(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{storage}: {stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_move_leaves_no_thumbnails_behind_and_none_is_looked_for_where_none_was_made() {
    let server = S3Server::start().await;
    let app = two_storage_app(&server).await;
    let staff = app.logged_in("staffer", Role::Staff).await;
    let png = crate::thumbnails::encoded(
        crate::thumbnails::picture(300, 200),
        image::ImageFormat::Png,
    );
    let file = upload_file(&app, &staff, "p.png", &png, "staff", None, &[]).await;
    assert!(file.thumbnails);
    let thumb = format!("/files/{}/thumbnail?size=small", file.id);

    // Killed right after the row switched: the thumbnails were not made in S3 yet, so the
    // row must not claim any.
    let (app_ref, server_ref) = (&app, &server);
    tokio::task::block_in_place(|| killed_move(app_ref, server_ref, "switched"));
    let row = app
        .file_rows()
        .into_iter()
        .find(|r| r.id == file.id)
        .unwrap();
    assert_eq!(row.storage, "s3");
    assert!(!row.thumbnails);
    assert_eq!(staff.get(&thumb).await.status(), StatusCode::NOT_FOUND);

    // The next move finishes the stopped one: the original goes, its thumbnails with it (a
    // file stored under that key later would find them otherwise).
    let (code, stdout, stderr) = tokio::task::block_in_place(|| {
        run(&app, &server, &["move", "--from", "local", "--to", "s3"])
    });
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        app.stored_objects().is_empty(),
        "{:?}",
        app.stored_objects()
    );
    assert!(
        !app.storage_root()
            .join(format!("{}.thumbs", file.storage_key))
            .exists()
    );
    // Running the move of that file again says it is done, and fails nothing.
    let (code, stdout, _) = tokio::task::block_in_place(|| {
        run(
            &app,
            &server,
            &[
                "move",
                "--from",
                "local",
                "--to",
                "s3",
                "--file",
                file.id.as_str(),
            ],
        )
    });
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!("skipped {}: it is in `s3` already", file.id)),
        "{stdout}"
    );
    // The backfill makes them where the file is now.
    let (code, stdout, stderr) =
        tokio::task::block_in_place(|| run(&app, &server, &["thumbnails", "--missing"]));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("made {}", file.id)), "{stdout}");
    assert_eq!(staff.get(&thumb).await.status(), StatusCode::OK);

    // Moved back with thumbnails turned off: none is made, and the row says so.
    let mut env = s3_env(&server);
    env.push((
        "PRIVATE_MEDIA_THUMBNAILS__ENABLED".to_owned(),
        "false".to_owned(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = tokio::task::block_in_place(|| {
        app.cli_with_env(&["move", "--from", "s3", "--to", "local"], &env)
    });
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let row = app
        .file_rows()
        .into_iter()
        .find(|r| r.id == file.id)
        .unwrap();
    assert_eq!(row.storage, "local");
    assert!(!row.thumbnails);
    assert_eq!(staff.get(&thumb).await.status(), StatusCode::NOT_FOUND);
    assert!(s3_keys(&server).is_empty(), "{:?}", s3_keys(&server));
}
