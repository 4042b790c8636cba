//! `private-media import`: files already in a filesystem storage's root become rows that keep
//! their keys, names with spaces and accents included, so the old path-view links work.

use private_media::db::models::pending_upload::PendingKey;
use private_media::domain::{Role, StorageKey};
use reqwest::StatusCode;

use crate::audit_log::events;
use crate::helpers::{TestApp, spawn_app, text, urlencode};

fn put(app: &TestApp, key: &str, bytes: &[u8]) {
    let path = app.storage_root().join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn import(app: &TestApp, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    let output = app.cli(&all, None);
    (
        output.status.code(),
        text(&output.stdout),
        text(&output.stderr),
    )
}

/// The path view's URL of a key, each segment percent-encoded as a link would be.
fn path_url(key: &str) -> String {
    let segments: Vec<String> = key.split('/').map(urlencode).collect();
    format!("/private-media/{}", segments.join("/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_files_are_registered_under_their_own_keys_once() {
    let app = spawn_app().await;
    app.add_user("staffer", Role::Staff);
    let root_user = app.logged_in("root", Role::Superuser).await;
    let pdf = b"%PDF-1.4\n% an old payslip\n".to_vec();
    put(&app, "2019/05/report.pdf", &pdf);
    put(&app, "Grüße/März 2020.txt", b"spring");
    put(&app, "with space.txt", b"spaced");
    put(&app, ".tmp/leftover", b"a temp file is not a file");
    put(&app, "bad\u{1}name.txt", b"control");
    std::os::unix::fs::symlink("/etc/passwd", app.storage_root().join("link.txt")).unwrap();
    // An upload under way holds this key: not imported.
    put(&app, "pending.txt", b"p");
    let key = StorageKey::parse("pending.txt").unwrap();
    assert!(
        PendingKey::reserve(
            &mut app.db.get().unwrap(),
            "local",
            &key,
            "elsewhere",
            (1, "x")
        )
        .unwrap()
    );

    let root = app.storage_root();
    let root = root.to_str().unwrap();
    let (code, stdout, stderr) = import(&app, &[root, "--as", "staffer", "--access", "staff"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("imported 2019/05/report.pdf: "), "{stdout}");
    assert!(
        stdout.contains("imported Grüße/März 2020.txt: "),
        "{stdout}"
    );
    assert!(stdout.contains("imported with space.txt: "), "{stdout}");
    assert!(stdout.contains("refused link.txt: a symlink"), "{stdout}");
    assert!(
        stdout.contains("refused bad\\u{1}name.txt: not a valid storage key: a control character"),
        "{stdout}"
    );
    assert!(
        stdout.contains("skipped pending.txt: already registered"),
        "{stdout}"
    );
    assert!(!stdout.contains("leftover"), "{stdout}");
    assert!(
        stdout.contains("imported 3 of 6 file(s): 1 already registered, 2 refused, 0 failed"),
        "{stdout}"
    );

    let rows = app.file_rows();
    assert_eq!(rows.len(), 3);
    let report = rows
        .iter()
        .find(|r| r.storage_key.as_str() == "2019/05/report.pdf")
        .unwrap();
    assert_eq!(report.content_type, "application/pdf");
    assert_eq!(report.size, pdf.len() as i64);
    assert_eq!(report.original_name, "report.pdf");
    use sha2::Digest;
    assert_eq!(report.sha256, hex::encode(sha2::Sha256::digest(&pdf)));
    let spring = rows
        .iter()
        .find(|r| r.original_name == "März 2020.txt")
        .unwrap();
    assert_eq!(spring.storage_key.as_str(), "Grüße/März 2020.txt");

    // The old links work, and so do the new ones.
    for (key, body) in [
        ("Grüße/März 2020.txt", &b"spring"[..]),
        ("with space.txt", b"spaced"),
        ("2019/05/report.pdf", &pdf),
    ] {
        let response = root_user.get(&path_url(key)).await;
        assert_eq!(response.status(), StatusCode::OK, "{key}");
        assert_eq!(response.bytes().await.unwrap().as_ref(), body, "{key}");
    }
    let response = root_user
        .get(&format!("/files/{}/download", spring.id))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.contains("UTF-8''M%C3%A4rz%202020.txt"),
        "{disposition}"
    );

    let imported: Vec<_> = events(&app)
        .into_iter()
        .filter(|e| e.event == "upload")
        .collect();
    assert_eq!(imported.len(), 3);
    assert!(
        imported
            .iter()
            .all(|e| e.detail.as_deref().is_some_and(|d| d.contains("imported")))
    );

    // Again: nothing new.
    let (_, stdout, _) = import(&app, &[root, "--as", "staffer"]);
    assert!(
        stdout.contains("imported 0 of 6 file(s): 4 already registered, 2 refused, 0 failed"),
        "{stdout}"
    );
    assert_eq!(app.file_rows().len(), 3);
    assert_eq!(
        events(&app).iter().filter(|e| e.event == "upload").count(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_of_the_root_only_and_clear_errors_otherwise() {
    let app = spawn_app().await;
    app.add_user("staffer", Role::Staff);
    app.add_user("plain", Role::User);
    put(&app, "old/a.txt", b"a");
    put(&app, "other/b.txt", b"b");
    let folder = app.storage_root().join("old");
    let folder = folder.to_str().unwrap();
    let (code, stdout, stderr) = import(&app, &[folder, "--as", "staffer", "--owner", "plain"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let rows = app.file_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].storage_key.as_str(), "old/a.txt");

    let outside = tempfile::tempdir().unwrap();
    let outside = outside.path().to_str().unwrap().to_owned();
    let root = app.storage_root();
    let root = root.to_str().unwrap().to_owned();
    for (args, expected) in [
        (
            vec![outside.as_str(), "--as", "staffer"],
            "is not inside the root of the storage `local`",
        ),
        (
            vec!["/no/such/folder", "--as", "staffer"],
            "cannot open /no/such/folder",
        ),
        (vec![root.as_str(), "--as", "plain"], "`plain` is not staff"),
        (
            vec![root.as_str(), "--as", "nobody"],
            "no user named `nobody`",
        ),
        (
            vec![root.as_str(), "--as", "staffer", "--storage", "s3"],
            "no storage named `s3`",
        ),
        (
            vec![root.as_str(), "--as", "staffer", "--owner", "nobody"],
            "no user named `nobody`",
        ),
    ] {
        let (code, stdout, stderr) = import(&app, &args);
        assert_eq!(code, Some(1), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let (code, _, _) = import(&app, &[root.as_str()]);
    assert_eq!(code, Some(2), "--as is required");
    // An S3 storage has no folder to import from (it is never reached for this).
    let remote = [
        ("PRIVATE_MEDIA_STORAGES__REMOTE__KIND", "s3"),
        ("PRIVATE_MEDIA_STORAGES__REMOTE__BUCKET", "media"),
        ("PRIVATE_MEDIA_STORAGES__REMOTE__REGION", "us-east-1"),
        (
            "PRIVATE_MEDIA_STORAGES__REMOTE__ENDPOINT",
            "http://127.0.0.1:9",
        ),
        ("PRIVATE_MEDIA_STORAGES__REMOTE__ACCESS_KEY_ID", "id"),
        (
            "PRIVATE_MEDIA_STORAGES__REMOTE__SECRET_ACCESS_KEY",
            "secret",
        ),
    ];
    let output = app.cli_with_env(
        &[
            "import",
            root.as_str(),
            "--storage",
            "remote",
            "--as",
            "staffer",
        ],
        &remote,
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("`remote` is not a filesystem storage"),
        "{stderr}"
    );
    assert_eq!(app.file_rows().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_folders_are_never_imported_and_other_files_in_them_are_refused() {
    let app = spawn_app().await;
    app.add_user("staffer", Role::Staff);
    let staff = app.logged_in("stella", Role::Staff).await;
    let png =
        crate::thumbnails::encoded(crate::thumbnails::picture(64, 64), image::ImageFormat::Png);
    let image = crate::helpers::upload_file(&app, &staff, "p.png", &png, "staff", None, &[]).await;
    put(&app, "legacy/albums.thumbs/cover.txt", b"an old file");

    let root = app.storage_root().to_str().unwrap().to_owned();
    let (code, stdout, _) = import(&app, &[root.as_str(), "--as", "staffer"]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "skipped {}.thumbs/small.jpg: a thumbnail of a registered file",
            image.storage_key
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "refused legacy/albums.thumbs/cover.txt: it is in a folder whose name ends in `.thumbs`"
        ),
        "{stdout}"
    );
    assert_eq!(app.file_rows().len(), 1, "nothing registered");
}
