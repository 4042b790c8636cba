//! One upload request holds a bounded number of file descriptors, however many files it
//! carries: a finished file waits for the rest of its request with its temp file closed. And
//! when a later part of the request fails, none of the files before it is stored and none of
//! their (closed) temp files is left behind.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use private_media::domain::Role;

use crate::helpers::{
    BOUNDARY, Browser, PASSWORD, Part, TestApp, TestDatabase, multipart_body, multipart_file_head,
    serve_with_open_file_limit, spawn_app,
};

/// The most files one request may carry (the upload form's bound).
const MAX_FILES: usize = 100;

/// Files under a storage root, its temp folders aside.
fn objects_under(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != ".tmp") {
                    dirs.push(path);
                }
            } else {
                found.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// Files in the instances' temp folders, their lock files aside.
fn temp_files_under(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for instance in std::fs::read_dir(root.join(".tmp")).unwrap() {
        for file in std::fs::read_dir(instance.unwrap().path()).unwrap() {
            let file = file.unwrap().path();
            if file.file_name().is_some_and(|n| n != "lock") {
                found.push(file.display().to_string());
            }
        }
    }
    found
}

fn numbered_files(count: usize) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|i| {
            (
                format!("part-{i:03}.txt"),
                format!("file number {i}\n").repeat(64).into_bytes(),
            )
        })
        .collect()
}

/// The server sizes its connections at about three descriptors each; with 100 descriptors
/// in all, an upload that kept one open per file could not get through.
#[tokio::test]
async fn a_hundred_file_upload_succeeds_on_a_server_with_a_hundred_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::fresh();
    let mut env = vec![("PRIVATE_MEDIA_ADMIN_PASSWORD", PASSWORD)];
    if let Some(url) = &database.url {
        env.push(("DATABASE_URL", url.as_str()));
    }
    let served = serve_with_open_file_limit(dir.path(), &env, 100);
    let admin = Browser::new(&format!("http://127.0.0.1:{}", served.port));
    assert_eq!(admin.login("admin", PASSWORD, None).await.status(), 303);

    let files = numbered_files(MAX_FILES);
    let token = admin.csrf_token("/admin/files/new").await;
    let mut parts = vec![
        Part::Text("csrf_token", &token),
        Part::Text("access", "staff"),
    ];
    parts.extend(files.iter().map(|(n, b)| Part::File(n, b)));
    let response = admin.try_post_multipart(&parts).await;

    let response = response.unwrap_or_else(|e| panic!("the upload failed: {e}"));
    let status = response.status().as_u16();
    assert_eq!(status, 303, "{}", response.text().await.unwrap_or_default());
    let root = dir.path().join("private");
    let stored = objects_under(&root);
    assert_eq!(stored.len(), MAX_FILES, "{stored:?}");
    for (name, bytes) in &files {
        let key = stored
            .iter()
            .find(|k| k.ends_with(name.as_str()))
            .unwrap_or_else(|| panic!("{name} was not stored"));
        assert_eq!(&std::fs::read(root.join(key)).unwrap(), bytes, "{name}");
    }
    assert_eq!(temp_files_under(&root), Vec::<String>::new());
    // And the server still has descriptors for everyone else.
    let list = admin.get_text("/admin/files").await;
    assert!(list.contains("part-099.txt"), "{list}");
    drop(served);
}

#[tokio::test]
async fn a_batch_refused_after_a_hundred_finished_files_stores_none_of_them() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let files = numbered_files(MAX_FILES + 1);
    let mut parts = vec![Part::Text("access", "owner")];
    let token = staff.csrf_token("/admin/files/new").await;
    parts.insert(0, Part::Text("csrf_token", &token));
    parts.extend(files.iter().map(|(n, b)| Part::File(n, b)));

    let response = staff.post_multipart(&parts).await;

    assert_eq!(response.status().as_u16(), 413);
    assert_cleaned_up(&app).await;
}

#[tokio::test]
async fn a_request_that_breaks_off_after_finished_files_stores_none_of_them() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;
    let cookie = staff.cookie_header();

    // Three whole files, then the start of a fourth that never ends.
    let finished = numbered_files(3);
    let mut body = multipart_body(
        &finished
            .iter()
            .map(|(n, b)| Part::File(n, b))
            .collect::<Vec<_>>(),
    );
    body.truncate(body.len() - format!("--{BOUNDARY}--\r\n").len());
    let head = multipart_file_head(&token, "owner", "never-ends.bin");
    let addr = staff.base.trim_start_matches("http://").to_owned();
    let sent = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        // The token and rule first (the CSRF check wants them before any file), then the
        // finished files, then the broken one.
        let (fields, broken) = head.split_at(
            head.rfind(&format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\""
            ))
            .unwrap(),
        );
        let promised = fields.len() + body.len() + broken.len() + 10 * 1024 * 1024;
        let request = format!(
            "POST /admin/files HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
             Content-Length: {promised}\r\n\r\n{fields}"
        );
        stream.write_all(request.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        stream.write_all(broken.as_bytes()).unwrap();
        stream.write_all(&vec![b'x'; 512 * 1024]).unwrap();
        stream.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(stream);
    });
    sent.await.unwrap();

    assert_cleaned_up(&app).await;
}

/// Within 5 s of a refused or broken upload, no temp file is left and nothing is stored.
async fn assert_cleaned_up(app: &TestApp) {
    let mut left = app.temp_files();
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = app.temp_files();
    }
    assert!(left.is_empty(), "temp files left: {left:?}");
    app.assert_nothing_stored();
}
