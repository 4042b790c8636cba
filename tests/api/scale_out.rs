//! Several instances of one site (README: "Production: PostgreSQL, several instances, nginx"):
//! the same database and the same storage, sessions in cookies sealed with one shared secret
//! key. Under `TEST_DATABASE_URL` this runs on
//! PostgreSQL, as a scaled-out site does; without it, on one SQLite file shared by both.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::join_all;
use private_media::config::{DatabaseUrl, SecretKey, Settings, StorageSettings};
use private_media::domain::Role;
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::helpers::{
    Browser, PASSWORD, Part, TestApp, TestDatabase, spawn_app_on, text, upload_file,
};

const SHARED_SECRET: &str =
    "one secret key shared by every instance of the site, at least sixty-four characters long";

/// Two instances of one site: one database, one storage folder, one secret key; each has its
/// own data dir and port. The shared dir is returned last, so it outlives both apps.
pub struct Site {
    pub one: TestApp,
    pub two: TestApp,
    pub storage_root: PathBuf,
    _shared: tempfile::TempDir,
}

/// Also used by the cache tests (`access_cache.rs`).
pub async fn two_instances() -> Site {
    let database = TestDatabase::fresh();
    let shared = tempfile::tempdir().expect("shared dir");
    let storage_root = shared.path().join("private");
    let sqlite = shared.path().join("shared.sqlite3");
    let configure = |s: &mut Settings| {
        s.secret_key = Some(SecretKey::parse(SHARED_SECRET.to_owned()).expect("secret"));
        s.storages.insert(
            "local".to_owned(),
            StorageSettings::Filesystem {
                root: storage_root.clone(),
            },
        );
        if s.sqlite_path().is_some() {
            s.database = DatabaseUrl::Sqlite(sqlite.clone());
        }
    };
    let one = spawn_app_on(
        Arc::clone(&database),
        tempfile::tempdir().expect("data dir"),
        configure,
    )
    .await;
    let two = spawn_app_on(database, tempfile::tempdir().expect("data dir"), configure).await;
    Site {
        one,
        two,
        storage_root,
        _shared: shared,
    }
}

#[tokio::test]
async fn the_suite_runs_on_the_database_it_was_given() {
    let database = TestDatabase::fresh();
    let expected = if database.url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let app = spawn_app_on(database, tempfile::tempdir().expect("data dir"), |_| {}).await;
    assert_eq!(app.db.backend_name().expect("backend"), expected);
}

#[tokio::test]
async fn a_file_uploaded_through_one_instance_downloads_through_the_other() {
    let site = two_instances().await;
    let (one, two) = (&site.one, &site.two);
    one.add_user("stella", Role::Staff);
    let staff = one.browser();
    assert_eq!(
        staff.login("stella", PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER
    );
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let file = upload_file(one, &staff, "shared report.bin", &data, "staff", None, &[]).await;

    // The same cookie, sent to the other instance.
    let same_user_on_two = Browser::with_cookies_of(&staff, &two.base);
    let url = format!("/files/{}/download", file.id);
    let response = same_user_on_two.get(&url).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.bytes().await.expect("body"), data);
    let listing = same_user_on_two.get_text("/admin/files").await;
    assert!(listing.contains("shared report.bin"), "{listing}");

    // A password change on one instance's database ends the session on both.
    let output = one.cli(
        &["user", "set-password", "stella", "--password-stdin"],
        Some("another long password\n"),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        same_user_on_two.get(&url).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(staff.get(&url).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn two_hundred_concurrent_uploads_of_one_name_keep_every_file() {
    const UPLOADS: usize = 200;
    let site = two_instances().await;
    let (one, two) = (&site.one, &site.two);
    one.add_user("stella", Role::Staff);
    let staff_on_one = one.browser();
    assert_eq!(
        staff_on_one.login("stella", PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER
    );
    let staff_on_two = Browser::with_cookies_of(&staff_on_one, &two.base);
    let token = staff_on_one.csrf_token("/admin/files/new").await;
    let bodies: Vec<Vec<u8>> = (0..UPLOADS)
        .map(|i| format!("upload number {i}\n").repeat(50).into_bytes())
        .collect();
    let uploads = bodies.iter().enumerate().map(|(i, body)| {
        let browser = if i % 2 == 0 {
            &staff_on_one
        } else {
            &staff_on_two
        };
        let token = token.as_str();
        async move {
            browser
                .post_multipart(&[
                    Part::Text("csrf_token", token),
                    Part::Text("access", "staff"),
                    Part::File("same name.txt", body),
                ])
                .await
                .status()
        }
    });
    let statuses = join_all(uploads).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::SEE_OTHER),
        "every upload is stored: {statuses:?}"
    );

    let rows = one.file_rows();
    assert_eq!(rows.len(), UPLOADS, "rows");
    let keys: BTreeSet<&str> = rows.iter().map(|r| r.storage_key.as_str()).collect();
    assert_eq!(keys.len(), UPLOADS, "every row has its own key");
    let expected: BTreeSet<String> = bodies
        .iter()
        .map(|b| hex::encode(Sha256::digest(b)))
        .collect();
    let stored: BTreeSet<String> = rows.iter().map(|r| r.sha256.clone()).collect();
    assert_eq!(stored, expected, "every body is stored once");
    // Each object holds the bytes its row says.
    let root = &site.storage_root;
    let mut objects = 0;
    for row in &rows {
        let bytes = std::fs::read(root.join(row.storage_key.as_str())).expect("object");
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            row.sha256,
            "{}",
            row.storage_key
        );
        objects += 1;
    }
    assert_eq!(objects, UPLOADS);
}

#[test]
fn instances_starting_together_on_an_empty_database_all_start() {
    let database = TestDatabase::fresh();
    let shared = tempfile::tempdir().expect("shared dir");
    let sqlite = shared.path().join("shared.sqlite3");
    let starts: Vec<_> = (0..4)
        .map(|_| {
            let url = database.url.clone();
            let sqlite = sqlite.clone();
            std::thread::spawn(move || {
                let data_dir = tempfile::tempdir().expect("data dir");
                let mut settings = Settings::for_data_dir(data_dir.path()).expect("settings");
                settings.database = match url {
                    Some(url) => DatabaseUrl::parse(&url).expect("url"),
                    None => DatabaseUrl::Sqlite(sqlite),
                };
                private_media::startup::prepare(settings)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    for start in starts {
        start
            .join()
            .expect("thread")
            .expect("every instance starts");
    }
}

#[tokio::test]
async fn failed_logins_on_one_instance_count_on_the_other() {
    let site = two_instances().await;
    let (one, two) = (&site.one, &site.two);
    one.add_user("alice", Role::User);
    one.add_user("bob", Role::User);
    for i in 0..5 {
        let instance = if i % 2 == 0 { one } else { two };
        let response = instance.browser().login("alice", "wrong guess", None).await;
        assert_eq!(response.status(), StatusCode::OK, "attempt {i}");
    }
    for instance in [one, two] {
        let blocked = instance.browser().login("alice", PASSWORD, None).await;
        assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
        let bob = instance.browser().login("bob", PASSWORD, None).await;
        assert_eq!(bob.status(), StatusCode::SEE_OTHER);
    }
}
