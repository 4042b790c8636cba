//! Replacing a file's content while something else changes it: a second replace, or a delete.
//! Nothing may remove another file's object, and a delete leaves no content behind.

use std::time::Duration;

use diesel::prelude::*;
use private_media::config::StorageSettings;
use private_media::db::models::file::FileRow;
use private_media::db::schema::files;
use private_media::domain::{FileId, Role};
use reqwest::StatusCode;

use crate::helpers::{Browser, TestApp, spawn_app_with, upload_file};

fn row(app: &TestApp, id: &FileId) -> Option<FileRow> {
    let mut conn = app.db.get().expect("connection");
    FileRow::find(&mut conn, id).expect("query")
}

/// The folders of the storages `local` (the app's) and `second` (the test's).
struct Roots {
    local: std::path::PathBuf,
    second: std::path::PathBuf,
}

impl Roots {
    fn of(&self, storage: &str) -> &std::path::Path {
        if storage == "second" {
            &self.second
        } else {
            &self.local
        }
    }
}

/// Moves a file's row and object into the storage `to` (same key).
fn move_to(app: &TestApp, roots: &Roots, id: &FileId, to: &str) {
    let file = row(app, id).expect("the row");
    let from = roots.of(&file.storage).join(file.storage_key.as_str());
    let dest = roots.of(to).join(file.storage_key.as_str());
    std::fs::create_dir_all(dest.parent().expect("a folder")).expect("mkdir");
    std::fs::rename(&from, &dest).expect("move the object");
    let mut conn = app.db.get().expect("connection");
    diesel::update(files::table.filter(files::id.eq(id.as_str())))
        .set(files::storage.eq(to))
        .execute(&mut conn)
        .expect("move the row");
}

fn receiver_stream(
    mut receiver: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

pub(crate) async fn replace_now(
    staff: &Browser,
    id: &FileId,
    name: &str,
    bytes: &[u8],
) -> StatusCode {
    let token = staff.csrf_token(&format!("/admin/files/{id}")).await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token)
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_owned()),
        );
    staff
        .client
        .post(staff.url(&format!("/admin/files/{id}/replace")))
        .multipart(form)
        .send()
        .await
        .expect("POST replace")
        .status()
}

#[tokio::test]
async fn a_replace_that_ends_after_another_removes_only_the_content_it_replaced() {
    let second = tempfile::tempdir().expect("a folder");
    let second_root = second.path().to_path_buf();
    let app = spawn_app_with(move |s| {
        s.storages.insert(
            "second".into(),
            StorageSettings::Filesystem { root: second_root },
        );
    })
    .await;
    let roots = Roots {
        local: app.storage_root(),
        second: second.path().to_path_buf(),
    };
    let staff = app.logged_in("stella", Role::Staff).await;
    let reader = app.logged_in("rita", Role::User).await;
    // Two files in the storage `second`; new content goes to `local`.
    let target = upload_file(&app, &staff, "target.txt", b"target", "staff", None, &[]).await;
    let victim = upload_file(
        &app,
        &staff,
        "victim.txt",
        b"victim",
        "authenticated",
        None,
        &[],
    )
    .await;
    move_to(&app, &roots, &target.id, "second");
    move_to(&app, &roots, &victim.id, "second");
    let victim_key = row(&app, &victim.id).expect("victim").storage_key;

    // Replace A of the target starts and waits half-sent: it began with the target in `second`.
    let token = staff
        .csrf_token(&format!("/admin/files/{}", target.id))
        .await;
    let boundary = "xRACEx";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"late.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nlate "
    );
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let request = staff
        .client
        .post(staff.url(&format!("/admin/files/{}/replace", target.id)))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(reqwest::Body::wrap_stream(receiver_stream(receiver)))
        .send();
    let late = tokio::spawn(request);
    sender.send(Ok(head.into_bytes())).await.expect("send");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Replace B ends first: the target now points at `local`, under the victim's key name.
    assert_eq!(
        replace_now(&staff, &target.id, "victim.txt", b"early").await,
        StatusCode::SEE_OTHER
    );
    let moved = row(&app, &target.id).expect("target");
    assert_eq!(moved.storage, "local");
    assert_eq!(
        moved.storage_key, victim_key,
        "the test needs the same key in both"
    );

    // Replace A ends: it removes what the row pointed at, in the storage the row named.
    sender
        .send(Ok(format!("content\r\n--{boundary}--\r\n").into_bytes()))
        .await
        .expect("send");
    drop(sender);
    let late = late.await.expect("task").expect("replace A");
    assert_eq!(late.status(), StatusCode::SEE_OTHER);

    let got = reader.get(&format!("/files/{}/download", victim.id)).await;
    assert_eq!(
        got.status(),
        StatusCode::OK,
        "the other file's object was removed"
    );
    assert_eq!(got.bytes().await.expect("body").as_ref(), b"victim");
    let got = staff.get(&format!("/files/{}/download", target.id)).await;
    assert_eq!(got.bytes().await.expect("body").as_ref(), b"late content");
    // Replace B's object went with its row's move to A's content.
    assert!(!roots.local.join(victim_key.as_str()).exists());
}

/// A delete and a replace of one file at once, many times: the file ends deleted with no
/// object left in the storage (before, about one round in twenty left the replacement's
/// object behind without a row), or replaced and whole.
#[tokio::test]
async fn a_delete_racing_a_replace_leaves_no_content_behind() {
    let app = spawn_app_with(|_| {}).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let root = app.storage_root();
    for round in 0..60 {
        let file = upload_file(
            &app,
            &staff,
            &format!("r{round}.bin"),
            &[7u8; 20_000],
            "staff",
            None,
            &[],
        )
        .await;
        let token = staff.csrf_token(&format!("/admin/files/{}", file.id)).await;
        let new_name = format!("n{round}.bin");
        let replace = replace_now(&staff, &file.id, &new_name, &[9u8; 20_000]);
        let delete = async {
            tokio::time::sleep(Duration::from_millis(round % 7)).await;
            staff
                .post_form(
                    &format!("/admin/files/{}/delete", file.id),
                    &[("csrf_token", token.as_str())],
                )
                .await
                .status()
        };
        let (_, deleted) = tokio::join!(replace, delete);
        assert!(
            deleted == StatusCode::SEE_OTHER || deleted == StatusCode::NOT_FOUND,
            "round {round}: delete answered {deleted}"
        );
        if row(&app, &file.id).is_none() {
            let left: Vec<_> = walk(&root)
                .into_iter()
                .filter(|p| {
                    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                    name == format!("r{round}.bin") || name == format!("n{round}.bin")
                })
                .collect();
            assert!(left.is_empty(), "round {round}: left behind {left:?}");
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Downloads while the content is replaced over and over: each answer is one whole version,
/// never a 404 (a download that read the row just before a replace used to find the old
/// object gone). Bounded: 40 replaces, 4 downloads in flight.
#[tokio::test]
async fn downloads_during_replaces_get_one_whole_version_never_a_404() {
    let app = spawn_app_with(|_| {}).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let version = |n: usize| format!("version {n:03} ").repeat(2000).into_bytes();
    let file = upload_file(&app, &staff, "v.txt", &version(0), "staff", None, &[]).await;
    let id = file.id.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..4 {
        let reader = Browser::with_cookies_of(&staff, &app.base);
        let (stop, url) = (stop.clone(), format!("/files/{id}/download"));
        readers.push(tokio::spawn(async move {
            let (mut answers, mut bad) = (0, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = reader.get(&url).await;
                let status = response.status();
                let body = response.bytes().await.unwrap_or_default();
                answers += 1;
                let whole = body.len() == 24_000 && body.chunks(12).all(|c| c == &body[..12]);
                if status != StatusCode::OK || !whole {
                    bad.push(format!("{status} ({} bytes)", body.len()));
                }
            }
            (answers, bad)
        }));
    }
    for n in 1..=40 {
        let status = replace_now(&staff, &id, "v.txt", &version(n)).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "replace {n}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut answers, mut bad) = (0, Vec::new());
    for reader in readers {
        let (n, b) = reader.await.expect("reader");
        answers += n;
        bad.extend(b);
    }
    assert!(answers > 40, "only {answers} downloads ran");
    assert!(
        bad.is_empty(),
        "{} of {answers} downloads were wrong: {bad:?}",
        bad.len()
    );
}
