//! `kill -9` at random points of many concurrent uploads, then a restart: every object has
//! its row and every row its object (same bytes), and no temp file is left — whatever
//! moment the process died at.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use private_media::config::DatabaseUrl;
use private_media::db::Db;
use private_media::db::models::file::{FileRow, ListQuery};
use private_media::db::models::pending_upload::PendingKey;
use private_media::domain::{Role, StorageKey};
use sha2::{Digest, Sha256};

use crate::helpers::{Browser, Part, serve, spawn_app};

const ADMIN_PASSWORD: &str = "crash-test-admin-password";
const ROUNDS: usize = 8;
const UPLOADERS: usize = 8;

fn env() -> [(&'static str, &'static str); 1] {
    [("PRIVATE_MEDIA_ADMIN_PASSWORD", ADMIN_PASSWORD)]
}

/// Uploads files of a few hundred KiB to a few MiB, one after another, until the server
/// goes away.
async fn upload_until_killed(base: String, seed: u64) {
    let browser = Browser::new(&base);
    if browser.login("admin", ADMIN_PASSWORD, None).await.status() != 303 {
        return;
    }
    let page = match browser
        .client
        .get(browser.url("/admin/files/new"))
        .send()
        .await
    {
        Ok(page) => page.text().await.unwrap_or_default(),
        Err(_) => return,
    };
    let Some(token) = crate::helpers::csrf_token_in(&page) else {
        return;
    };
    for n in 0u64.. {
        let size = 200_000 + ((seed * 7919 + n * 104_729) % 3_000_000) as usize;
        let bytes: Vec<u8> = (0..size).map(|i| (i as u64 ^ seed ^ n) as u8).collect();
        let name = format!("crash-{seed}-{n}.bin");
        let sent = browser
            .try_post_multipart(&[
                Part::Text("csrf_token", &token),
                Part::Text("access", "staff"),
                Part::File(&name, &bytes),
            ])
            .await;
        if sent.is_err() {
            return;
        }
    }
}

fn objects(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != ".tmp") {
                    dirs.push(path);
                }
            } else {
                found.push(
                    path.strip_prefix(root)
                        .expect("inside")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    found.sort();
    found
}

/// Everything in the temp area but the live instance's lock file.
fn temp_leftovers(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut instances = 0;
    for instance in std::fs::read_dir(root.join(".tmp")).expect("tmp") {
        instances += 1;
        let instance = instance.expect("entry").path();
        for file in std::fs::read_dir(&instance).expect("instance") {
            let file = file.expect("entry").path();
            if file.file_name().is_some_and(|n| n != "lock") {
                found.push(file);
            }
        }
    }
    if instances != 1 {
        found.push(root.join(format!(".tmp ({instances} instance folders)")));
    }
    found
}

/// What is wrong with the storage and the rows, if anything.
fn inconsistencies(data_dir: &Path) -> Vec<String> {
    let root = data_dir.join("private");
    let db = Db::connect(
        &DatabaseUrl::Sqlite(data_dir.join("private-media.sqlite3")),
        1,
    )
    .expect("database");
    let mut conn = db.get().expect("connection");
    let rows = FileRow::admin_page(
        &mut conn,
        &ListQuery {
            search: None,
            page: 1,
            per_page: 100_000,
            sort: Default::default(),
            filters: Default::default(),
        },
    )
    .expect("rows")
    .items;
    let mut problems = Vec::new();
    let on_disk = objects(&root);
    for row in &rows {
        let file = &row.file;
        match std::fs::read(root.join(file.storage_key.as_str())) {
            Ok(bytes) => {
                if hex::encode(Sha256::digest(&bytes)) != file.sha256
                    || bytes.len() as i64 != file.size
                {
                    problems.push(format!("{}: bytes differ from the row", file.storage_key));
                }
            }
            Err(e) => problems.push(format!("{}: row without object ({e})", file.storage_key)),
        }
    }
    for key in &on_disk {
        if !rows.iter().any(|r| r.file.storage_key.as_str() == key) {
            problems.push(format!("{key}: object without a row"));
        }
    }
    for leftover in temp_leftovers(&root) {
        problems.push(format!("temp leftover {}", leftover.display()));
    }
    problems
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_during_uploads_leaves_no_object_without_its_row_after_a_restart() {
    let dir = tempfile::tempdir().expect("data dir");
    let mut uploaded_rounds = 0;
    for round in 0..ROUNDS {
        let mut served = serve(dir.path(), &env());
        let base = format!("http://127.0.0.1:{}", served.port);
        let uploaders: Vec<_> = (0..UPLOADERS)
            .map(|i| tokio::spawn(upload_until_killed(base.clone(), (round * 100 + i) as u64)))
            .collect();
        let delay = 200 + rand::random::<u64>() % 800;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        served.child.kill().expect("kill -9");
        served.child.wait().expect("wait");
        for uploader in uploaders {
            let _ = uploader.await;
        }
        uploaded_rounds += 1;
    }
    assert_eq!(uploaded_rounds, ROUNDS);

    // A restart reconciles (in the background: give it a moment).
    let served = serve(dir.path(), &env());
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut problems = inconsistencies(dir.path());
    while !problems.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        problems = inconsistencies(dir.path());
    }
    drop(served);
    assert!(
        problems.is_empty(),
        "after the restart:\n{}",
        problems.join("\n")
    );
}

#[tokio::test]
async fn an_object_whose_upload_has_not_written_its_row_is_not_served_by_the_path_view() {
    let app = spawn_app().await;
    let admin = app.logged_in("root", Role::Superuser).await;
    std::fs::create_dir_all(app.storage_root().join("x")).expect("folder");
    std::fs::write(app.storage_root().join("x/y.txt"), b"half-way").expect("object");
    let mut conn = app.db.get().expect("connection");
    let key = StorageKey::parse("x/y.txt").expect("key");
    assert!(PendingKey::reserve(&mut conn, "local", &key, "feed", (8, "00")).expect("reserve"));
    assert!(!PendingKey::reserve(&mut conn, "local", &key, "beef", (8, "00")).expect("reserve"));
    assert_eq!(admin.get("/private-media/x/y.txt").await.status(), 404);
    PendingKey::release(&mut conn, "local", &key).expect("release");
    assert_eq!(admin.get("/private-media/x/y.txt").await.status(), 200);
}
