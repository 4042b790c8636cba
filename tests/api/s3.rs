//! S3 storages against a real S3 server on loopback (`helpers/s3_server.rs`): uploads through
//! the admin as multipart uploads, downloads by presigned redirect or proxied, encryption,
//! failures.

use std::sync::Arc;
use std::time::Duration;

use private_media::config::{S3Encryption, S3Settings, Settings, StorageSettings};
use private_media::domain::Role;
use private_media::storage::s3::PART_SIZE;
use reqwest::StatusCode;

use crate::helpers::s3_server::{ACCESS_KEY, LOCATION, S3Server};
use crate::helpers::{
    Browser, PASSWORD, Part, TestApp, TestDatabase, location, spawn_app_on, spawn_app_with, text,
    upload_file,
};

const S3: &str = "s3";

fn use_s3(settings: &mut Settings, s3: S3Settings) {
    settings
        .storages
        .insert(S3.to_owned(), StorageSettings::S3(s3));
    settings.upload.storage = S3.to_owned();
}

async fn s3_app(server: &S3Server, querystring_auth: bool) -> TestApp {
    let s3 = server.settings(querystring_auth);
    spawn_app_with(|s| use_s3(s, s3)).await
}

/// A plain HTTP client, as a browser following a redirect to S3 would be (no cookies).
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn bytes(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn an_upload_lands_in_s3_and_downloads_by_presigned_redirect() {
    let server = S3Server::start().await;
    let app = s3_app(&server, true).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let data = bytes(300_000);
    let file = upload_file(&app, &staff, "résumé final.pdf", &data, "staff", None, &[]).await;

    assert_eq!(file.storage, S3);
    let object = format!("{LOCATION}/{}", file.storage_key);
    assert_eq!(
        server.objects(),
        vec![object.clone()],
        "one object, no temp left"
    );
    assert_eq!(server.object_bytes(&object), data);
    let detail = staff.get(&format!("/admin/files/{}", file.id)).await;
    // The page's PDF preview follows the download's redirect to S3: its origin, and no other,
    // is allowed to be framed and shown there.
    let origin = server.endpoint.trim_end_matches('/');
    let csp = detail.headers()["content-security-policy"]
        .to_str()
        .expect("ascii")
        .to_owned();
    for directive in ["img-src", "media-src", "frame-src"] {
        let allowed = csp
            .split(';')
            .find(|d| d.trim().starts_with(directive))
            .unwrap_or_else(|| panic!("{directive} in {csp}"));
        assert!(
            allowed.contains(&format!(" {origin}")),
            "{directive}: {csp}"
        );
    }
    assert!(
        csp.contains("script-src 'self';"),
        "scripts only from the app: {csp}"
    );
    let detail = detail.text().await.expect("page");
    assert!(detail.contains(S3), "the admin names the storage");

    let response = staff.get(&format!("/files/{}/download", file.id)).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()["cache-control"], "private, no-cache");
    let url = location(&response);
    assert!(url.starts_with(&server.endpoint), "{url}");
    assert!(url.contains("X-Amz-Expires=300"), "{url}");
    assert!(url.contains("response-content-disposition="), "{url}");

    let fetched = plain_client().get(&url).send().await.expect("fetch");
    assert_eq!(fetched.status(), StatusCode::OK);
    let disposition = fetched.headers()["content-disposition"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        disposition.contains("filename*=UTF-8''r%C3%A9sum%C3%A9%20final.pdf"),
        "{disposition}"
    );
    assert_eq!(fetched.bytes().await.expect("body"), data);
}

#[tokio::test]
async fn a_tampered_or_expired_presigned_url_is_refused_by_s3() {
    let server = S3Server::start().await;
    let mut s3 = server.settings(true);
    // Signatures carry whole seconds: a 1 s expiry could leave a fraction of a second (a flake
    // under load). 3 s, with the genuine URL fetched first.
    s3.querystring_expire = 3;
    let app = spawn_app_with(|s| use_s3(s, s3)).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "a.bin", &bytes(1000), "staff", None, &[]).await;
    let url = location(&staff.get(&format!("/files/{}/download", file.id)).await);

    // The genuine URL works, until it expires.
    let ok = plain_client().get(&url).send().await.expect("fetch");
    assert_eq!(ok.status(), StatusCode::OK);
    // Another object under the same signature.
    let other_key = url.replace(file.storage_key.as_str(), "2099/01/01/other.bin");
    assert_ne!(other_key, url);
    let refused = plain_client().get(&other_key).send().await.expect("fetch");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // A changed signature.
    let signature_at = url.find("X-Amz-Signature=").expect("signed") + 16;
    let mut tampered = url.clone().into_bytes();
    tampered[signature_at] = if tampered[signature_at] == b'0' {
        b'1'
    } else {
        b'0'
    };
    let tampered = String::from_utf8(tampered).expect("ascii");
    let refused = plain_client().get(&tampered).send().await.expect("fetch");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    tokio::time::sleep(Duration::from_millis(4100)).await;
    let expired = plain_client().get(&url).send().await.expect("fetch");
    assert_eq!(expired.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_user_without_access_gets_403_and_no_url() {
    let server = S3Server::start().await;
    let app = s3_app(&server, true).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "secret.bin", &bytes(100), "staff", None, &[]).await;
    let paul = app.logged_in("paul", Role::User).await;
    let response = paul.get(&format!("/files/{}/download", file.id)).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get("location").is_none());
    let body = response.text().await.expect("body");
    assert!(!body.contains("X-Amz"), "{body}");
    let anonymous = app.browser();
    let response = anonymous.get(&format!("/files/{}/download", file.id)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login"));
}

#[tokio::test]
async fn proxy_mode_streams_with_ranges_head_and_conditional_requests() {
    let server = S3Server::start().await;
    let app = s3_app(&server, false).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let data = bytes(1_000_000);
    let file = upload_file(&app, &staff, "data.bin", &data, "staff", None, &[]).await;
    let url = staff.url(&format!("/files/{}/download", file.id));

    let full = staff.client.get(&url).send().await.expect("get");
    assert_eq!(full.status(), StatusCode::OK);
    let headers = full.headers().clone();
    assert_eq!(headers["content-length"], "1000000");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["cache-control"], "private, no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"data.bin\"; filename*=UTF-8''data.bin"
    );
    assert!(headers.get("last-modified").is_some());
    let etag = headers["etag"].to_str().expect("etag").to_owned();
    assert_eq!(full.bytes().await.expect("body"), data);

    let partial = staff
        .client
        .get(&url)
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .expect("range");
    assert_eq!(partial.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        partial.headers()["content-range"],
        "bytes 1000-1999/1000000"
    );
    assert_eq!(partial.headers()["content-length"], "1000");
    assert_eq!(partial.bytes().await.expect("body"), &data[1000..2000]);

    let suffix = staff
        .client
        .get(&url)
        .header("range", "bytes=-10")
        .send()
        .await
        .expect("suffix");
    assert_eq!(suffix.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        suffix.bytes().await.expect("body"),
        &data[data.len() - 10..]
    );

    let unsatisfiable = staff
        .client
        .get(&url)
        .header("range", "bytes=2000000-")
        .send()
        .await
        .expect("416");
    assert_eq!(unsatisfiable.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(unsatisfiable.headers()["content-range"], "bytes */1000000");

    let head = staff.client.head(&url).send().await.expect("head");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["content-length"],
        "1000000",
        "{:?}",
        head.headers()
    );
    assert_eq!(head.headers()["etag"], etag.as_str());
    assert!(head.bytes().await.expect("body").is_empty());

    let cached = staff
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("304");
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(cached.headers()["cache-control"], "private, no-cache");
    let last_modified = headers["last-modified"].to_str().expect("date").to_owned();
    let by_date = staff
        .client
        .get(&url)
        .header("if-modified-since", &last_modified)
        .send()
        .await
        .expect("304");
    assert_eq!(by_date.status(), StatusCode::NOT_MODIFIED);
    let other_tag = staff
        .client
        .get(&url)
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .expect("200");
    assert_eq!(other_tag.status(), StatusCode::OK);

    // A range for another version of the object: the whole current one.
    let stale = staff
        .client
        .get(&url)
        .header("range", "bytes=0-9")
        .header("if-range", "\"an-old-tag\"")
        .send()
        .await
        .expect("if-range");
    assert_eq!(stale.status(), StatusCode::OK);
    assert_eq!(stale.bytes().await.expect("body").len(), data.len());
    let fresh = staff
        .client
        .get(&url)
        .header("range", "bytes=0-9")
        .header("if-range", &etag)
        .send()
        .await
        .expect("if-range");
    assert_eq!(fresh.status(), StatusCode::PARTIAL_CONTENT);
    // A Range that does not parse is ignored; HEAD ignores Range.
    let odd = staff
        .client
        .get(&url)
        .header("range", "items=0-9")
        .send()
        .await
        .expect("odd range");
    assert_eq!(odd.status(), StatusCode::OK);
    let head_range = staff
        .client
        .head(&url)
        .header("range", "bytes=0-9")
        .send()
        .await
        .expect("head range");
    assert_eq!(head_range.status(), StatusCode::OK);
    assert_eq!(head_range.headers()["content-length"], "1000000");
    // Preconditions.
    let mismatch = staff
        .client
        .get(&url)
        .header("if-match", "\"not-this\"")
        .send()
        .await
        .expect("412");
    assert_eq!(mismatch.status(), StatusCode::PRECONDITION_FAILED);
    let matching = staff
        .client
        .get(&url)
        .header("if-match", &etag)
        .send()
        .await
        .expect("200");
    assert_eq!(matching.status(), StatusCode::OK);
}

#[tokio::test]
async fn head_in_redirect_mode_answers_from_metadata() {
    let server = S3Server::start().await;
    let app = s3_app(&server, true).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "h.pdf", &bytes(4321), "staff", None, &[]).await;
    let head = staff
        .client
        .head(staff.url(&format!("/files/{}/download", file.id)))
        .send()
        .await
        .expect("head");
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], "4321");
    assert_eq!(head.headers()["cache-control"], "private, no-cache");
    assert!(head.headers().get("location").is_none());
}

#[tokio::test]
async fn a_50_mib_upload_goes_up_in_bounded_parts() {
    let server = S3Server::start().await;
    let mut s3 = server.settings(false);
    s3.encryption = Some(S3Encryption::Aes256);
    let app = spawn_app_with(|s| {
        use_s3(s, s3);
        s.upload.max_file_size = 64 * 1024 * 1024;
    })
    .await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let data = bytes(50 * 1024 * 1024);
    let file = upload_file(&app, &staff, "big.bin", &data, "staff", None, &[]).await;

    let writes = server.writes();
    let parts: Vec<i64> = writes
        .iter()
        .filter(|w| w.operation == "part")
        .map(|w| w.length.expect("a length"))
        .collect();
    assert_eq!(parts.len(), 50usize.div_ceil(PART_SIZE / (1024 * 1024)));
    assert!(
        parts.iter().all(|&n| n as usize <= PART_SIZE),
        "parts: {parts:?}"
    );
    assert_eq!(parts.iter().sum::<i64>(), data.len() as i64);
    assert!(server.open_multipart_uploads().is_empty());
    let object = format!("{LOCATION}/{}", file.storage_key);
    assert_eq!(server.objects(), vec![object.clone()]);
    assert_eq!(server.object_bytes(&object), data);
    // Encryption and a private ACL were asked for on every write that makes an object.
    for write in writes.iter().filter(|w| w.operation != "part") {
        assert_eq!(write.encryption.as_deref(), Some("AES256"), "{write:?}");
        assert_eq!(write.acl.as_deref(), Some("private"), "{write:?}");
    }
}

#[tokio::test]
async fn kms_encryption_names_its_key() {
    let server = S3Server::start().await;
    let mut s3 = server.settings(true);
    s3.encryption = Some(S3Encryption::Kms {
        key_id: "arn:aws:kms:eu-west-1:111122223333:key/test".to_owned(),
    });
    let app = spawn_app_with(|s| use_s3(s, s3)).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    upload_file(&app, &staff, "k.txt", b"hello kms", "staff", None, &[]).await;
    let writes = server.writes();
    assert!(!writes.is_empty());
    for write in &writes {
        assert_eq!(write.encryption.as_deref(), Some("aws:kms"), "{write:?}");
        assert_eq!(
            write.kms_key_id.as_deref(),
            Some("arn:aws:kms:eu-west-1:111122223333:key/test")
        );
    }
}

#[tokio::test]
async fn an_oversize_upload_aborts_and_leaves_no_object_and_no_row() {
    let server = S3Server::start().await;
    let mut s3 = server.settings(true);
    s3.encryption = None;
    let app = spawn_app_with(|s| {
        use_s3(s, s3);
        s.upload.max_file_size = 10 * 1024 * 1024;
    })
    .await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;
    let data = bytes(20 * 1024 * 1024);
    let response = staff
        .post_multipart(&[
            Part::Text("csrf_token", &token),
            Part::Text("access", "staff"),
            Part::File("big.bin", &data),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        server.writes().iter().any(|w| w.operation == "part"),
        "the upload had started sending parts"
    );
    assert!(server.objects().is_empty(), "{:?}", server.objects());
    assert!(server.open_multipart_uploads().is_empty());
    assert!(app.file_rows().is_empty());
}

#[tokio::test]
async fn s3_stopped_midway_is_a_503_and_nothing_is_recorded() {
    let server = S3Server::start().await;
    let app = s3_app(&server, false).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let kept = upload_file(&app, &staff, "kept.bin", &bytes(5000), "staff", None, &[]).await;

    // A 20 MiB upload whose first part reaches S3, then S3 goes away.
    let token = staff.csrf_token("/admin/files/new").await;
    let boundary = "xS3STOPx";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"access\"\r\n\r\nstaff\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"lost.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(receiver));
    let request = staff
        .client
        .post(staff.url("/admin/files"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send();
    let upload = tokio::spawn(request);
    sender.send(Ok(head.into_bytes())).await.expect("send");
    let chunk = bytes(1024 * 1024);
    for _ in 0..10 {
        sender.send(Ok(chunk.clone())).await.expect("send");
    }
    // Wait until the first part has reached S3, then stop it.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !server.writes().iter().any(|w| w.operation == "part") {
        assert!(std::time::Instant::now() < deadline, "no part reached S3");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
    for _ in 0..10 {
        if sender.send(Ok(chunk.clone())).await.is_err() {
            break;
        }
    }
    let _ = sender
        .send(Ok(format!("\r\n--{boundary}--\r\n").into_bytes()))
        .await;
    drop(sender);
    let response = upload.await.expect("task").expect("response");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let page = response.text().await.expect("page");
    assert!(page.contains("cannot be reached"), "{page}");
    let rows = app.file_rows();
    assert_eq!(rows.len(), 1, "only the earlier file is recorded");
    assert_eq!(rows[0].id, kept.id);

    // Downloads while S3 is gone: a clear 503 too.
    let download = staff.get(&format!("/files/{}/download", kept.id)).await;
    assert_eq!(download.status(), StatusCode::SERVICE_UNAVAILABLE);
}

fn tokio_stream_from(
    mut receiver: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

#[tokio::test]
async fn a_missing_object_is_404_in_both_modes() {
    let server = S3Server::start().await;
    for querystring_auth in [true, false] {
        let app = s3_app(&server, querystring_auth).await;
        let staff = app.logged_in("stella", Role::Staff).await;
        let file = upload_file(&app, &staff, "gone.bin", &bytes(10), "staff", None, &[]).await;
        std::fs::remove_file(
            server
                .bucket_dir()
                .join(format!("{LOCATION}/{}", file.storage_key)),
        )
        .expect("remove the object behind the app's back");
        let response = staff.get(&format!("/files/{}/download", file.id)).await;
        assert_eq!(
            response.status(),
            StatusCode::NOT_FOUND,
            "querystring_auth = {querystring_auth}"
        );
    }
}

#[tokio::test]
async fn two_uploads_of_one_name_keep_both_objects() {
    let server = S3Server::start().await;
    let app = s3_app(&server, true).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let a = upload_file(&app, &staff, "same.txt", b"first", "staff", None, &[]).await;
    let b = upload_file(&app, &staff, "same.txt", b"second", "staff", None, &[]).await;
    assert_ne!(a.storage_key, b.storage_key);
    assert_eq!(
        server.object_bytes(&format!("{LOCATION}/{}", a.storage_key)),
        b"first"
    );
    assert_eq!(
        server.object_bytes(&format!("{LOCATION}/{}", b.storage_key)),
        b"second"
    );
    // Delete removes the object from S3, and says so.
    let token = staff.csrf_token(&format!("/admin/files/{}", a.id)).await;
    let response = staff
        .post_form(
            &format!("/admin/files/{}/delete", a.id),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        server.objects(),
        vec![format!("{LOCATION}/{}", b.storage_key)]
    );
}

#[tokio::test]
async fn local_and_s3_files_live_side_by_side() {
    let server = S3Server::start().await;
    let database = TestDatabase::fresh();
    let shared = tempfile::tempdir().expect("shared");
    let sqlite = shared.path().join("shared.sqlite3");
    let local_root = shared.path().join("private");
    let s3 = server.settings(false);
    let configure = |upload_to: &'static str| {
        let s3 = s3.clone();
        let sqlite = sqlite.clone();
        let local_root = local_root.clone();
        move |s: &mut Settings| {
            s.storages.insert(
                "local".to_owned(),
                StorageSettings::Filesystem { root: local_root },
            );
            s.storages.insert(S3.to_owned(), StorageSettings::S3(s3));
            s.upload.storage = upload_to.to_owned();
            if s.sqlite_path().is_some() {
                s.database = private_media::config::DatabaseUrl::Sqlite(sqlite);
            }
        }
    };
    // The site before and after its move to S3: same database, same secret-free setup.
    let before = spawn_app_on(
        Arc::clone(&database),
        tempfile::tempdir().expect("data"),
        configure("local"),
    )
    .await;
    let after = spawn_app_on(database, tempfile::tempdir().expect("data"), configure(S3)).await;
    before.add_user("stella", Role::Staff);
    let on_before = Browser::new(&before.base);
    assert_eq!(
        on_before.login("stella", PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER
    );
    let old = upload_file(
        &before,
        &on_before,
        "old.txt",
        b"old local file",
        "staff",
        None,
        &[],
    )
    .await;
    let on_after = Browser::new(&after.base);
    assert_eq!(
        on_after.login("stella", PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER
    );
    let new = upload_file(
        &after,
        &on_after,
        "new.txt",
        b"new s3 file",
        "staff",
        None,
        &[],
    )
    .await;
    assert_eq!(old.storage, "local");
    assert_eq!(new.storage, S3);
    for (file, expected) in [(&old, &b"old local file"[..]), (&new, &b"new s3 file"[..])] {
        let response = on_after.get(&format!("/files/{}/download", file.id)).await;
        assert_eq!(response.status(), StatusCode::OK, "{}", file.storage);
        assert_eq!(response.bytes().await.expect("body"), expected);
    }
    let list = on_after.get_text("/admin/files").await;
    assert!(list.contains("old.txt") && list.contains("new.txt"));
}

// The CLI is waited for synchronously: the S3 server needs other threads to run meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_and_fails_as_it_should() {
    let server = S3Server::start().await;
    let app = s3_app(&server, true).await;
    let env = |secret: &str| -> Vec<(String, String)> {
        vec![
            ("PRIVATE_MEDIA_STORAGES__MEDIA__KIND".into(), "s3".into()),
            (
                "PRIVATE_MEDIA_STORAGES__MEDIA__BUCKET".into(),
                "media".into(),
            ),
            (
                "PRIVATE_MEDIA_STORAGES__MEDIA__LOCATION".into(),
                LOCATION.into(),
            ),
            (
                "PRIVATE_MEDIA_STORAGES__MEDIA__REGION".into(),
                "us-east-1".into(),
            ),
            (
                "PRIVATE_MEDIA_STORAGES__MEDIA__ENDPOINT".into(),
                server.endpoint.clone(),
            ),
            ("AWS_ACCESS_KEY_ID".into(), ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), secret.into()),
        ]
    };
    let run = |env: Vec<(String, String)>| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        app.cli_with_env(&["check"], &env)
    };

    let output = run(env(crate::helpers::s3_server::SECRET_KEY));
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(stdout.contains("storage `media` (s3): ok"), "{stdout}");
    assert!(server.objects().is_empty(), "the probe was deleted");

    let output = run(env("a-wrong-secret-key"));
    assert_eq!(output.status.code(), Some(1));
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(all.contains("storage `media` (s3)"), "{all}");
    assert!(
        all.contains("credentials"),
        "a 403 is a configuration problem: {all}"
    );

    server.stop().await;
    let output = run(env(crate::helpers::s3_server::SECRET_KEY));
    assert_eq!(output.status.code(), Some(1));
    let all = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert!(all.contains("cannot reach S3"), "{all}");
}

#[tokio::test]
async fn old_temporary_objects_are_swept_at_start() {
    let server = S3Server::start().await;
    let tmp = server.bucket_dir().join(LOCATION).join(".tmp");
    std::fs::create_dir_all(&tmp).expect("tmp dir");
    let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 60 * 60);
    let leftover = tmp.join("0123456789abcdef0123456789abcdef");
    std::fs::write(&leftover, b"cut short by a crash").expect("leftover");
    std::fs::File::options()
        .write(true)
        .open(&leftover)
        .expect("open")
        .set_modified(two_hours_ago)
        .expect("age it");
    let in_flight = tmp.join("fedcba9876543210fedcba9876543210");
    std::fs::write(&in_flight, b"another instance is copying this").expect("fresh");
    let kept = format!("{LOCATION}/2026/01/01/kept.txt");
    std::fs::create_dir_all(server.bucket_dir().join(format!("{LOCATION}/2026/01/01")))
        .expect("dir");
    std::fs::write(server.bucket_dir().join(&kept), b"a real file").expect("file");
    let old_file = server.bucket_dir().join(&kept);
    std::fs::File::options()
        .write(true)
        .open(&old_file)
        .expect("open")
        .set_modified(two_hours_ago)
        .expect("age it");

    let _app = s3_app(&server, true).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while leftover.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the leftover was not swept"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        in_flight.exists(),
        "a fresh temporary object is someone's upload"
    );
    assert!(old_file.exists(), "objects outside .tmp/ are never swept");
}

/// A script is plain text to the sniffer; by its name it is active content, presigned or
/// proxied, with or without `?inline=1`.
#[tokio::test]
async fn a_script_from_s3_is_an_octet_stream_attachment_in_both_modes() {
    let server = S3Server::start().await;
    for querystring_auth in [true, false] {
        let app = s3_app(&server, querystring_auth).await;
        let staff = app.logged_in("stella", Role::Staff).await;
        let script = b"fetch('/admin/users', {method: 'POST'})";
        let file = upload_file(&app, &staff, "app.js", script, "staff", None, &[]).await;
        for query in ["", "?inline=1"] {
            let response = staff
                .get(&format!("/files/{}/download{query}", file.id))
                .await;
            let response = if querystring_auth {
                assert_eq!(response.status(), StatusCode::FOUND);
                plain_client()
                    .get(location(&response))
                    .send()
                    .await
                    .expect("fetch")
            } else {
                response
            };
            assert_eq!(
                response.status(),
                StatusCode::OK,
                "{querystring_auth} {query}"
            );
            assert_eq!(
                response.headers()["content-type"],
                "application/octet-stream",
                "{querystring_auth} {query}"
            );
            assert_eq!(
                response.headers()["content-disposition"],
                "attachment; filename=\"app.js\"; filename*=UTF-8''app.js",
                "{querystring_auth} {query}"
            );
            assert_eq!(response.bytes().await.expect("body"), &script[..]);
        }
    }
}

/// Each file of a batch becomes a whole temporary object as soon as its part ends (so it
/// holds no buffer while the rest arrives); the batch still commits them all.
#[tokio::test]
async fn a_batch_of_files_is_stored_whole_and_leaves_no_temporary_objects() {
    let server = S3Server::start().await;
    let app = s3_app(&server, true).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let files: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| (format!("batch-{i}.bin"), bytes(1000 + i * 4096)))
        .collect();
    let listed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();

    let response = staff.upload("staff", &listed).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let rows = app.file_rows();
    assert_eq!(rows.len(), files.len());
    for (name, data) in &files {
        let row = rows.iter().find(|r| &r.original_name == name).unwrap();
        let key = format!("{LOCATION}/{}", row.storage_key);
        assert_eq!(&server.object_bytes(&key), data, "{name}");
    }
    let objects = server.objects();
    assert_eq!(objects.len(), files.len(), "{objects:?}");
    assert!(server.open_multipart_uploads().is_empty());
}

/// A part after finished files fails the request: none of them is stored, and their
/// temporary objects go.
#[tokio::test]
async fn a_batch_whose_later_part_is_refused_leaves_nothing_in_the_bucket() {
    let server = S3Server::start().await;
    let app = s3_app(&server, true).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;
    let files: Vec<(String, Vec<u8>)> = (0..3)
        .map(|i| (format!("early-{i}.bin"), bytes(2000 + i)))
        .collect();
    let too_long = "t".repeat(65 * 1024);
    let mut parts = vec![
        Part::Text("csrf_token", &token),
        Part::Text("access", "staff"),
    ];
    parts.extend(files.iter().map(|(n, b)| Part::File(n, b)));
    parts.push(Part::Text("title", &too_long));

    let response = staff.post_multipart(&parts).await;

    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        server
            .writes()
            .iter()
            .filter(|w| w.operation == "put")
            .count()
            >= files.len(),
        "the files had become temporary objects: {:?}",
        server.writes()
    );
    assert!(
        !server.writes().iter().any(|w| w.operation == "copy"),
        "a file was committed"
    );
    let mut left = server.objects();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = server.objects();
    }
    assert!(left.is_empty(), "objects left: {left:?}");
    assert!(server.open_multipart_uploads().is_empty());
    assert!(app.file_rows().is_empty());
}
