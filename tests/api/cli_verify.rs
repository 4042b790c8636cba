//! `private-media verify`: every object read back against its row, every object looked up
//! for its row; missing, corrupt and orphan objects reported (text and JSON), on a local
//! folder and on S3.

use private_media::config::StorageSettings;
use private_media::domain::Role;

use crate::cli_move::s3_env;
use crate::helpers::s3_server::{LOCATION, S3Server};
use crate::helpers::{TestApp, spawn_app, spawn_app_with, text, upload_file};

fn verify(app: &TestApp, args: &[&str], env: &[(String, String)]) -> (Option<i32>, String, String) {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let output = app.cli_with_env(&all, &env);
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sound_storage_passes() {
    let app = spawn_app().await;
    let staff = app.logged_in("staffer", Role::Staff).await;
    upload_file(&app, &staff, "a.txt", b"alpha", "owner", None, &[]).await;
    let (code, stdout, stderr) = verify(&app, &[], &[]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(
        stdout.trim(),
        "verified 1 file(s) and 1 object(s) in 1 storage(s): 0 missing, 0 corrupt, 0 unreadable, 0 orphan(s), 0 unusable"
    );
    let (code, stdout, _) = verify(&app, &["--format", "json"], &[]);
    assert_eq!(code, Some(0));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["files_checked"], 1);
    assert_eq!(report["problems"], serde_json::json!([]));

    let (code, _, stderr) = verify(&app, &["--storage", "elsewhere"], &[]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("no storage named `elsewhere`"), "{stderr}");
    let (code, _, _) = verify(&app, &["--format", "yaml"], &[]);
    assert_eq!(code, Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_missing_and_stray_objects_are_each_reported() {
    let app = spawn_app().await;
    let staff = app.logged_in("staffer", Role::Staff).await;
    let corrupt = upload_file(&app, &staff, "c.txt", b"corrupt me", "owner", None, &[]).await;
    let missing = upload_file(&app, &staff, "m.txt", b"delete me", "owner", None, &[]).await;
    upload_file(&app, &staff, "fine.txt", b"leave me", "owner", None, &[]).await;
    let root = app.storage_root();
    std::fs::write(root.join(corrupt.storage_key.as_str()), b"corrupt mE").unwrap();
    std::fs::remove_file(root.join(missing.storage_key.as_str())).unwrap();
    std::fs::write(root.join("stray file.bin"), b"nobody's").unwrap();
    // An upload's temp file is not an orphan.
    let instance = std::fs::read_dir(root.join(".tmp"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(instance.join("upload-in-progress"), b"x").unwrap();

    let (code, stdout, stderr) = verify(&app, &[], &[]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "corrupt local:{} (file {}): SHA-256 ",
            corrupt.storage_key, corrupt.id
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "missing local:{} (file {}): no object under the key",
            missing.storage_key, missing.id
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("orphan local:stray file.bin: no file row names this object"),
        "{stdout}"
    );
    assert!(!stdout.contains("upload-in-progress"), "{stdout}");
    assert!(
        stdout.contains("1 missing, 1 corrupt, 0 unreadable, 1 orphan(s), 0 unusable"),
        "{stdout}"
    );
    assert!(stderr.contains("3 problem(s) found"), "{stderr}");

    let (code, stdout, _) = verify(&app, &["--format", "json"], &[]);
    assert_eq!(code, Some(1));
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(report["ok"], false);
    assert_eq!(report["storages"], serde_json::json!(["local"]));
    assert_eq!(report["files_checked"], 3);
    assert_eq!(report["objects_listed"], 3);
    let problems = report["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3);
    let of = |kind: &str| {
        problems
            .iter()
            .find(|p| p["problem"] == kind)
            .unwrap()
            .clone()
    };
    assert_eq!(of("corrupt")["file"], corrupt.id.as_str());
    assert_eq!(of("corrupt")["key"], corrupt.storage_key.as_str());
    assert_eq!(of("missing")["storage"], "local");
    assert_eq!(of("orphan")["key"], "stray file.bin");
    assert_eq!(of("orphan")["file"], serde_json::Value::Null);
    for problem in problems {
        let mut keys: Vec<&str> = problem
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(keys, ["detail", "file", "key", "problem", "storage"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_objects_are_verified_too() {
    let server = S3Server::start().await;
    let s3 = server.settings(false);
    let app = spawn_app_with(|s| {
        s.storages.insert("s3".to_owned(), StorageSettings::S3(s3));
        s.upload.storage = "s3".to_owned();
    })
    .await;
    let staff = app.logged_in("staffer", Role::Staff).await;
    let corrupt = upload_file(&app, &staff, "c.txt", b"corrupt me", "owner", None, &[]).await;
    let missing = upload_file(&app, &staff, "m.txt", b"delete me", "owner", None, &[]).await;
    let env = s3_env(&server);
    let (code, stdout, stderr) = verify(&app, &["--storage", "s3"], &env);
    assert_eq!(code, Some(0), "{stdout}{stderr}");

    let object = |key: &str| server.bucket_dir().join(LOCATION).join(key);
    std::fs::write(object(corrupt.storage_key.as_str()), b"corrupt").unwrap();
    std::fs::remove_file(object(missing.storage_key.as_str())).unwrap();
    std::fs::write(object("stray.bin"), b"stray").unwrap();
    let (code, stdout, stderr) = verify(&app, &["--storage", "s3"], &env);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!(
            "corrupt s3:{} (file {})",
            corrupt.storage_key, corrupt.id
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "missing s3:{} (file {})",
            missing.storage_key, missing.id
        )),
        "{stdout}"
    );
    assert!(stdout.contains("orphan s3:stray.bin"), "{stdout}");
    assert!(
        stdout.contains("1 missing, 1 corrupt, 0 unreadable, 1 orphan(s)"),
        "{stdout}"
    );
}
