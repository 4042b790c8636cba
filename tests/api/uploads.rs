use std::io::{Read, Write};
use std::time::Duration;

use private_media::config::ContentTypePattern;
use private_media::domain::Role;
use sha2::{Digest, Sha256};

use crate::helpers::{
    BOUNDARY, PNG, Part, location, multipart_file_head, spawn_app, spawn_app_in, spawn_app_with,
};

#[tokio::test]
async fn staff_upload_a_file_and_see_it_listed() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;

    let response = staff
        .upload("owner", &[("report.pdf", b"%PDF-1.7 hello")])
        .await;

    assert_eq!(response.status().as_u16(), 303);
    let detail = location(&response);
    let rows = app.file_rows();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(detail, format!("/admin/files/{}", row.id));
    assert_eq!(row.id.as_str().len(), 32, "ids carry 128 random bits");
    assert_eq!(row.original_name, "report.pdf");
    assert_eq!(row.title, "report.pdf");
    assert_eq!(row.storage, "local");
    assert_eq!(row.size, 14);
    assert_eq!(row.content_type, "application/pdf");
    assert_eq!(row.sha256, hex::encode(Sha256::digest(b"%PDF-1.7 hello")));
    assert_eq!(app.stored_objects(), vec![row.storage_key.to_string()]);
    assert_eq!(
        std::fs::read(app.storage_root().join(row.storage_key.as_str())).unwrap(),
        b"%PDF-1.7 hello"
    );
    assert!(app.temp_files().is_empty());

    let page = staff.get_text(&detail).await;
    assert!(page.contains("Stored “report.pdf”"), "{page}");
    assert!(page.contains(row.storage_key.as_str()), "{page}");
    assert!(page.contains(&row.sha256), "{page}");
    assert!(
        page.contains(&format!("/files/{}/download", row.id)),
        "{page}"
    );
    let list = staff.get_text("/admin/files").await;
    assert!(list.contains("report.pdf"), "{list}");
}

#[tokio::test]
async fn non_staff_cannot_reach_the_admin_or_post_an_upload() {
    let app = spawn_app().await;
    let user = app.logged_in("alice", Role::User).await;
    for path in ["/admin/files", "/admin/files/new"] {
        assert_eq!(user.get(path).await.status().as_u16(), 403, "{path}");
    }
    let token = user.csrf_token("/files").await;
    let response = user
        .post_multipart(&[
            Part::Text("csrf_token", &token),
            Part::Text("access", "authenticated"),
            Part::File("x.txt", b"hello"),
        ])
        .await;
    assert_eq!(response.status().as_u16(), 403);

    let anonymous = app.browser();
    let token = anonymous.csrf_token("/login").await;
    let response = anonymous
        .post_multipart(&[
            Part::Text("csrf_token", &token),
            Part::Text("access", "authenticated"),
            Part::File("x.txt", b"hello"),
        ])
        .await;
    assert_eq!(response.status().as_u16(), 303);
    assert!(location(&response).starts_with("/login"));
    app.assert_nothing_stored();
}

#[tokio::test]
async fn an_upload_needs_the_csrf_token_before_any_file() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;

    let file_first = staff
        .post_multipart(&[
            Part::File("x.txt", b"hello"),
            Part::Text("csrf_token", &token),
            Part::Text("access", "owner"),
        ])
        .await;
    assert_eq!(file_first.status().as_u16(), 403);
    let wrong = staff
        .post_multipart(&[
            Part::Text("csrf_token", "not-the-token"),
            Part::Text("access", "owner"),
            Part::File("x.txt", b"hello"),
        ])
        .await;
    assert_eq!(wrong.status().as_u16(), 403);
    let missing = staff
        .post_multipart(&[Part::Text("access", "owner"), Part::File("x.txt", b"hello")])
        .await;
    assert_eq!(missing.status().as_u16(), 403);
    app.assert_nothing_stored();
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_and_leaves_nothing_behind() {
    let app = spawn_app_with(|s| s.upload.max_file_size = 1024).await;
    let staff = app.logged_in("stella", Role::Staff).await;

    let response = staff
        .upload("owner", &[("big.bin", &[7u8; 10 * 1024])])
        .await;

    assert_eq!(response.status().as_u16(), 413);
    let page = response.text().await.unwrap();
    assert!(page.contains("big.bin"), "{page}");
    assert!(page.contains("the limit is 1 KiB"), "{page}");
    app.assert_nothing_stored();
}

#[tokio::test]
async fn a_huge_file_is_cut_off_without_reading_it_all() {
    let app = spawn_app_with(|s| s.upload.max_file_size = 1024 * 1024).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    // 20 MiB against a 1 MiB limit: the server stops reading long before the end.
    let response = staff
        .upload("owner", &[("huge.bin", &vec![1u8; 20 * 1024 * 1024])])
        .await;
    assert_eq!(response.status().as_u16(), 413);
    app.assert_nothing_stored();
}

#[tokio::test]
async fn a_png_name_carrying_html_is_refused_when_only_images_are_allowed() {
    let app = spawn_app_with(|s| {
        s.upload.content_types = vec![ContentTypePattern::parse("image/*").unwrap()];
    })
    .await;
    let staff = app.logged_in("stella", Role::Staff).await;

    let response = staff
        .upload(
            "owner",
            &[(
                "cat.png",
                b"<!DOCTYPE html><script>alert(document.cookie)</script>",
            )],
        )
        .await;

    assert_eq!(response.status().as_u16(), 415);
    let page = response.text().await.unwrap();
    assert!(page.contains("text/html"), "{page}");
    assert!(page.contains("image/*"), "{page}");
    app.assert_nothing_stored();

    let real = staff.upload("owner", &[("dog.jpg", PNG)]).await;
    assert_eq!(real.status().as_u16(), 303);
    assert_eq!(app.file_rows()[0].content_type, "image/png");
}

#[tokio::test]
async fn an_empty_file_is_refused() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let response = staff.upload("owner", &[("empty.txt", b"")]).await;
    assert_eq!(response.status().as_u16(), 422);
    let page = response.text().await.unwrap();
    assert!(page.contains("empty.txt"), "{page}");
    assert!(page.contains("the file is empty"), "{page}");
    app.assert_nothing_stored();
}

#[tokio::test]
async fn ten_files_with_two_bad_ones_store_exactly_eight() {
    let app = spawn_app_with(|s| s.upload.max_file_size = 4096).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let good: Vec<(String, Vec<u8>)> = (0..8)
        .map(|i| (format!("good-{i}.txt"), format!("content {i}").into_bytes()))
        .collect();
    let too_big = vec![0u8; 5000];
    let mut files: Vec<(&str, &[u8])> = good
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    files.insert(3, ("too-big.bin", &too_big));
    files.insert(7, ("empty.txt", b""));

    let response = staff.upload("authenticated", &files).await;

    assert_eq!(response.status().as_u16(), 413);
    let page = response.text().await.unwrap();
    assert!(page.contains("2 files were refused; 8 stored"), "{page}");
    assert!(page.contains("too-big.bin"), "{page}");
    assert!(page.contains("empty.txt"), "{page}");
    let rows = app.file_rows();
    assert_eq!(rows.len(), 8);
    assert_eq!(app.stored_objects().len(), 8);
    assert!(app.temp_files().is_empty());
    for (name, bytes) in &good {
        let row = rows
            .iter()
            .find(|r| &r.original_name == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(
            &std::fs::read(app.storage_root().join(row.storage_key.as_str())).unwrap(),
            bytes
        );
    }
}

#[tokio::test]
async fn two_uploads_of_the_same_name_keep_both() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    assert_eq!(
        staff
            .upload("owner", &[("same.txt", b"first")])
            .await
            .status()
            .as_u16(),
        303
    );
    assert_eq!(
        staff
            .upload("owner", &[("same.txt", b"second")])
            .await
            .status()
            .as_u16(),
        303
    );
    // And two in one request.
    assert_eq!(
        staff
            .upload("owner", &[("same.txt", b"third"), ("same.txt", b"fourth")])
            .await
            .status()
            .as_u16(),
        303
    );

    let rows = app.file_rows();
    assert_eq!(rows.len(), 4);
    let mut contents: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| std::fs::read(app.storage_root().join(r.storage_key.as_str())).unwrap())
        .collect();
    contents.sort();
    assert_eq!(
        contents,
        [
            b"first".to_vec(),
            b"fourth".to_vec(),
            b"second".to_vec(),
            b"third".to_vec()
        ]
    );
    let mut keys: Vec<&str> = rows.iter().map(|r| r.storage_key.as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4);
    assert!(rows.iter().all(|r| r.original_name == "same.txt"));
}

#[tokio::test]
async fn concurrent_uploads_of_the_same_name_never_overwrite() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let uploads = (0..12).map(|i| {
        let body = format!("upload number {i}");
        let staff = &staff;
        async move {
            let response = staff
                .upload("owner", &[("race.txt", body.as_bytes())])
                .await;
            assert_eq!(response.status().as_u16(), 303);
        }
    });
    futures_util::future::join_all(uploads).await;
    let rows = app.file_rows();
    assert_eq!(rows.len(), 12);
    let mut contents: Vec<String> = rows
        .iter()
        .map(|r| std::fs::read_to_string(app.storage_root().join(r.storage_key.as_str())).unwrap())
        .collect();
    contents.sort();
    contents.dedup();
    assert_eq!(contents.len(), 12, "an upload overwrote another");
}

#[tokio::test]
async fn a_client_that_drops_the_connection_halfway_leaves_nothing() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;
    let cookie = staff.cookie_header();

    let head = multipart_file_head(&token, "owner", "partial.bin");
    let addr = staff.base.trim_start_matches("http://").to_owned();
    let sent = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let request = format!(
            "POST /admin/files HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
             Content-Length: {}\r\n\r\n{head}",
            head.len() + 10 * 1024 * 1024
        );
        stream.write_all(request.as_bytes()).unwrap();
        // Half of the promised file, in several writes, then the client goes away.
        for _ in 0..20 {
            stream.write_all(&vec![b'x'; 256 * 1024]).unwrap();
        }
        stream.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        drop(stream);
    });
    sent.await.unwrap();

    // The server notices the broken request and drops the pending upload.
    let mut left = Vec::new();
    for _ in 0..50 {
        left = app.temp_files();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left.is_empty(), "temp files left: {left:?}");
    app.assert_nothing_stored();
    // The app still works.
    assert_eq!(
        staff
            .upload("owner", &[("ok.txt", b"fine")])
            .await
            .status()
            .as_u16(),
        303
    );
}

#[tokio::test]
async fn hostile_names_get_keys_inside_the_root_and_keep_their_display_name() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let long = format!("{}.txt", "n".repeat(300));
    let names = [
        "../../etc/passwd",
        "a/b",
        "..\\..\\win.ini",
        "résumé final.pdf",
        "Heizölrückstoßabdämpfung.txt",
        long.as_str(),
        ".htaccess",
        "..",
    ];
    for name in names {
        let response = staff.upload("owner", &[(name, b"some bytes")]).await;
        assert_eq!(response.status().as_u16(), 303, "{name:?}");
    }
    // A NUL cannot travel in a header: the request is refused whole, and clearly.
    let nul = staff.upload("owner", &[("nul\0byte.txt", b"x")]).await;
    assert_eq!(nul.status().as_u16(), 400);
    assert!(nul.text().await.unwrap().contains("Bad Request"));

    let root = app.storage_root().canonicalize().unwrap();
    let rows = app.file_rows();
    assert_eq!(rows.len(), names.len());
    for row in &rows {
        let path = root.join(row.storage_key.as_str()).canonicalize().unwrap();
        assert!(path.starts_with(&root), "{} escaped", row.storage_key);
        assert!(
            !row.storage_key.as_str().contains(".."),
            "{}",
            row.storage_key
        );
        assert!(row.storage_key.as_str().is_ascii(), "{}", row.storage_key);
        assert!(
            !row.storage_key
                .as_str()
                .split('/')
                .any(|s| s.starts_with('.')),
            "{}",
            row.storage_key
        );
    }
    let by_name = |n: &str| {
        rows.iter()
            .find(|r| r.original_name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    assert!(by_name("passwd").storage_key.as_str().ends_with("/passwd"));
    assert!(
        by_name("résumé final.pdf")
            .storage_key
            .as_str()
            .ends_with("/resume_final.pdf")
    );
    assert!(
        by_name("Heizölrückstoßabdämpfung.txt")
            .storage_key
            .as_str()
            .ends_with("/Heizolruckstossabdampfung.txt")
    );
    assert!(by_name(&long).storage_key.as_str().len() < 150);
}

#[tokio::test]
async fn delete_removes_the_row_and_the_object() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    staff.upload("owner", &[("doomed.txt", b"bye")]).await;
    let row = app.file_rows().remove(0);
    let token = staff.csrf_token(&format!("/admin/files/{}", row.id)).await;

    let response = staff
        .post_form(
            &format!("/admin/files/{}/delete", row.id),
            &[("csrf_token", &token)],
        )
        .await;

    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(&response), "/admin/files");
    app.assert_nothing_stored();
    let page = staff.get_text("/admin/files").await;
    assert!(
        page.contains("Deleted “doomed.txt” and its stored object."),
        "{page}"
    );
    let again = staff
        .post_form(
            &format!("/admin/files/{}/delete", row.id),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(again.status().as_u16(), 404);
    let plain = app.logged_in("alice", Role::User).await;
    let token = plain.csrf_token("/files").await;
    let refused = plain
        .post_form(
            &format!("/admin/files/{}/delete", row.id),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(refused.status().as_u16(), 403);
}

#[tokio::test]
async fn delete_says_so_when_the_object_was_already_gone() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    staff.upload("owner", &[("gone.txt", b"bye")]).await;
    let row = app.file_rows().remove(0);
    std::fs::remove_file(app.storage_root().join(row.storage_key.as_str())).unwrap();
    let token = staff.csrf_token("/admin/files").await;
    let response = staff
        .post_form(
            &format!("/admin/files/{}/delete", row.id),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    assert!(app.file_rows().is_empty());
    let page = staff.get_text("/admin/files").await;
    assert!(page.contains("already gone"), "{page}");
}

#[tokio::test]
async fn leftover_temp_files_are_removed_at_start() {
    let data_dir = tempfile::tempdir().unwrap();
    let dead = data_dir.path().join("private/.tmp/0123456789abcdef");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join("tmp.upload"), b"half an upload").unwrap();
    std::fs::write(dead.join("lock"), b"").unwrap();

    let app = spawn_app_in(data_dir, |_| {}).await;

    assert!(!dead.exists());
    app.assert_nothing_stored();
}

#[tokio::test]
async fn the_owner_can_be_another_user() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let bob = app.logged_in("bob", Role::User).await;
    let carol = app.logged_in("carol", Role::User).await;
    let token = staff.csrf_token("/admin/files/new").await;
    let response = staff
        .post_multipart(&[
            Part::Text("csrf_token", &token),
            Part::Text("title", "Payslip March"),
            Part::Text("access", "owner"),
            Part::Text("owner", "bob"),
            Part::File("payslip.pdf", b"%PDF-1.4 pay"),
        ])
        .await;
    assert_eq!(response.status().as_u16(), 303);
    let row = app.file_rows().remove(0);
    assert_eq!(row.title, "Payslip March");
    assert!(bob.get_text("/files").await.contains("Payslip March"));
    assert!(!carol.get_text("/files").await.contains("Payslip March"));
    let page = staff.get_text(&format!("/admin/files/{}", row.id)).await;
    assert!(page.contains("bob"), "{page}");
}

#[tokio::test]
async fn bad_fields_store_nothing_and_say_why() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;
    for (parts, expected) in [
        (
            vec![Part::Text("access", "everyone"), Part::File("a.txt", b"x")],
            "Choose who may download",
        ),
        (
            vec![
                Part::Text("access", "owner"),
                Part::Text("owner", "nobody"),
                Part::File("a.txt", b"x"),
            ],
            "no user named “nobody”",
        ),
        (
            vec![
                Part::Text("access", "users"),
                Part::Text("users", "ghost"),
                Part::File("a.txt", b"x"),
            ],
            "no user named “ghost”",
        ),
        (
            vec![Part::Text("access", "owner")],
            "Choose at least one file",
        ),
    ] {
        let mut all = vec![Part::Text("csrf_token", &token)];
        all.extend(parts);
        let response = staff.post_multipart(&all).await;
        assert_eq!(response.status().as_u16(), 422, "{expected}");
        let page = response.text().await.unwrap();
        assert!(page.contains(expected), "{expected}: {page}");
    }
    app.assert_nothing_stored();
}

#[tokio::test]
async fn the_admin_list_searches_and_pages() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let files: Vec<(String, Vec<u8>)> = (0..30)
        .map(|i| (format!("doc-{i:02}.txt"), format!("{i}").into_bytes()))
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    assert_eq!(staff.upload("owner", &refs).await.status().as_u16(), 303);

    let first = staff.get_text("/admin/files").await;
    assert_eq!(first.matches("<tr>").count() - 1, 25, "{first}");
    assert!(first.contains("Page 1 of 2"), "{first}");
    assert!(first.contains("/admin/files?page=2"), "{first}");
    let second = staff.get_text("/admin/files?page=2").await;
    assert_eq!(second.matches("<tr>").count() - 1, 5);
    let found = staff.get_text("/admin/files?q=DOC-17").await;
    assert!(found.contains("doc-17.txt"), "{found}");
    assert_eq!(found.matches("<tr>").count() - 1, 1);
    let none = staff.get_text("/admin/files?q=%25").await;
    assert!(none.contains("No file matches"), "{none}");
    assert_eq!(
        staff.get("/admin/files?page=abc").await.status().as_u16(),
        400
    );
}

#[tokio::test]
async fn staff_edit_the_title_and_the_rule() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let bob = app.logged_in("bob", Role::User).await;
    staff.upload("owner", &[("plan.txt", b"plan")]).await;
    let row = app.file_rows().remove(0);
    assert!(!bob.get_text("/files").await.contains("plan"));
    let detail = format!("/admin/files/{}", row.id);
    let token = staff.csrf_token(&detail).await;

    let response = staff
        .post_form(
            &detail,
            &[
                ("csrf_token", &token),
                ("title", "The plan"),
                ("access", "users"),
                ("users", "bob"),
            ],
        )
        .await;

    assert_eq!(response.status().as_u16(), 303);
    let page = staff.get_text(&detail).await;
    assert!(page.contains("Saved."), "{page}");
    assert!(
        page.contains("The owner and the listed users (and staff): bob"),
        "{page}"
    );
    assert!(bob.get_text("/files").await.contains("The plan"));

    let bad = staff
        .post_form(
            &detail,
            &[
                ("csrf_token", &token),
                ("title", "x"),
                ("access", "users"),
                ("users", "ghost"),
            ],
        )
        .await;
    assert_eq!(bad.status().as_u16(), 422);
    let unknown = staff
        .post_form(
            "/admin/files/0000",
            &[("csrf_token", &token), ("title", "x"), ("access", "staff")],
        )
        .await;
    assert_eq!(unknown.status().as_u16(), 404);
}

#[test]
fn check_passes_and_fails_as_it_should() {
    let dir = tempfile::tempdir().unwrap();
    crate::helpers::run_cli(dir.path(), &["migrate"], None, &[]);
    // `migrate` leaves the storage alone; its folder is made by the first start.
    std::fs::create_dir(dir.path().join("private")).unwrap();
    let ok = crate::helpers::run_cli(dir.path(), &["check"], None, &[]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let out = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(out.contains("storage `local` (filesystem): ok"), "{out}");
    assert!(out.contains("database: ok"), "{out}");

    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").unwrap();
    let root = blocker.join("storage");
    let config = dir.path().join("broken.toml");
    std::fs::write(
        &config,
        format!("[storages.local]\nroot = \"{}\"\n", root.display()),
    )
    .unwrap();
    let failed = crate::helpers::run_cli(
        dir.path(),
        &["check"],
        None,
        &[("PRIVATE_MEDIA_CONFIG", config.to_str().unwrap())],
    );
    assert_eq!(failed.status.code(), Some(1));
    let out = String::from_utf8_lossy(&failed.stdout).into_owned();
    assert!(
        out.contains("storage `local` (filesystem): FAILED"),
        "{out}"
    );
    let mut buf = String::new();
    std::io::Cursor::new(failed.stderr)
        .read_to_string(&mut buf)
        .unwrap();
    assert!(buf.starts_with("error: "), "{buf}");
}

#[tokio::test]
async fn a_bad_access_rule_is_refused_when_the_first_file_arrives() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;
    let cookie = staff.cookie_header();

    let head = multipart_file_head(&token, "everyone", "large.bin");
    let addr = staff.base.trim_start_matches("http://").to_owned();
    // A 50 MiB file is promised, only its first 256 KiB are sent: the answer must come anyway.
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let request = format!(
            "POST /admin/files HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
             Content-Length: {}\r\n\r\n{head}",
            head.len() + 50 * 1024 * 1024
        );
        stream.write_all(request.as_bytes()).unwrap();
        stream.write_all(&vec![b'x'; 256 * 1024]).unwrap();
        stream.flush().unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while !String::from_utf8_lossy(&answer).contains("Choose who may download") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    assert!(answer.contains("Choose who may download"), "{answer}");

    let mut left = Vec::new();
    for _ in 0..50 {
        left = app.temp_files();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(left.is_empty(), "temp files left: {left:?}");
    app.assert_nothing_stored();
}

/// A title far longer than a cookie can carry is stored, and the answer still says so (the
/// message quoting it is shortened), for the upload and for the delete.
#[tokio::test]
async fn a_very_long_title_is_stored_and_reported_without_an_error() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;
    let title = "ä".repeat(3000);
    let response = staff
        .post_multipart(&[
            Part::Text("csrf_token", &token),
            Part::Text("title", &title),
            Part::Text("access", "staff"),
            Part::File("long.txt", b"some text"),
        ])
        .await;
    assert_eq!(response.status().as_u16(), 303);
    let page = staff.get_text(&location(&response)).await;
    assert!(page.contains("Stored “ää"), "no flash on the next page");
    let row = app.file_rows().remove(0);
    assert_eq!(row.title, title);

    let token = staff.csrf_token(&format!("/admin/files/{}", row.id)).await;
    let deleted = staff
        .post_form(
            &format!("/admin/files/{}/delete", row.id),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(deleted.status().as_u16(), 303);
    assert!(app.file_rows().is_empty());
}
