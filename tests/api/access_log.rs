//! The access log of the real binary: one line per answer with the bytes really sent (big
//! files go with sendfile(2), small ones through the write buffer), and the client the
//! trusted proxies let us believe.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{Browser, Served, location, serve};

const ADMIN_PASSWORD: &str = "access-log-admin-password";
const BIG: usize = 3 * 1024 * 1024 + 11;
const CUT: usize = 48 * 1024 * 1024;

/// Logs in as admin and uploads a file of `big` bytes and one of 100; returns their ids.
async fn admin_with_files(served: &Served, big: usize) -> (Browser, String, String) {
    let admin = Browser::new(&format!("http://127.0.0.1:{}", served.port));
    assert_eq!(
        admin.login("admin", ADMIN_PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER
    );
    let mut ids = Vec::new();
    for (name, size) in [("big.bin", big), ("small.txt", 100)] {
        let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let response = admin.upload("owner", &[(name, &bytes)]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{name}");
        ids.push(location(&response).rsplit('/').next().unwrap().to_owned());
    }
    let small = ids.pop().unwrap();
    (admin, ids.pop().unwrap(), small)
}

fn logged(served: &Served, request: &str, rest: &str) -> String {
    let wanted = format!("\"{request} HTTP/1.1\" {rest}");
    served
        .stderr_line(Duration::from_secs(10), |line| line.contains(&wanted))
        .unwrap_or_else(|| panic!("no access log line with {wanted}"))
}

#[tokio::test]
async fn each_answer_is_logged_with_the_bytes_sent() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        &[
            ("PRIVATE_MEDIA_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("PRIVATE_MEDIA_LOG", "info"),
        ],
    );
    let (admin, big, small) = admin_with_files(&served, BIG).await;

    let path = format!("/files/{big}/download");
    let body = admin.get(&path).await.bytes().await.unwrap();
    assert_eq!(body.len(), BIG);
    let line = logged(&served, &format!("GET {path}"), &format!("200 {BIG} "));
    assert!(line.contains("127.0.0.1 \"GET"), "{line}");
    assert!(line.ends_with("ms"), "{line}");

    let ranged = admin
        .client
        .get(admin.url(&path))
        .header("range", "bytes=1000-1999999")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.bytes().await.unwrap().len(), 1_999_000);
    logged(&served, &format!("GET {path}"), "206 1999000 ");

    let path = format!("/files/{small}/download?x=1");
    assert_eq!(admin.get(&path).await.bytes().await.unwrap().len(), 100);
    logged(&served, &format!("GET {path}"), "200 100 ");

    // A refusal is logged too; a spoofed X-Forwarded-For from an untrusted peer is not
    // believed.
    let anonymous = Browser::new(&admin.base);
    let refused = anonymous
        .client
        .get(anonymous.url(&format!("/files/{big}/download")))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    let status = refused.status();
    let line = logged(
        &served,
        &format!("GET /files/{big}/download"),
        &format!("{} ", status.as_u16()),
    );
    assert!(line.contains("127.0.0.1 \"GET"), "{line}");
}

#[tokio::test]
async fn a_download_cut_short_logs_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        &[
            ("PRIVATE_MEDIA_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ("PRIVATE_MEDIA_SERVER__TRUSTED_PROXIES", "127.0.0.1"),
        ],
    );
    // More than loopback's socket buffers take, so the cut comes before the end.
    let (admin, big, _) = admin_with_files(&served, CUT).await;
    let path = format!("/files/{big}/download");
    // A raw connection, closed after the first bytes (an HTTP client library may keep
    // reading in the background).
    let mut client = TcpStream::connect(("127.0.0.1", served.port)).unwrap();
    write!(
        client,
        "GET {path} HTTP/1.1\r\nHost: x\r\nCookie: {}\r\nX-Forwarded-For: 198.51.100.7\r\n\r\n",
        admin.cookie_header()
    )
    .unwrap();
    let mut first = [0u8; 64 * 1024];
    let read = client.read(&mut first).unwrap();
    assert!(
        std::str::from_utf8(&first[..12])
            .unwrap()
            .starts_with("HTTP/1.1 200")
    );
    assert!(read > 0);
    drop(client);
    let line = served
        .stderr_line(Duration::from_secs(10), |line| {
            line.contains(&format!("\"GET {path} HTTP/1.1\" 200 "))
        })
        .expect("the cut download is logged");
    // Behind a trusted proxy, the client it forwarded for.
    assert!(line.contains("198.51.100.7 \"GET"), "{line}");
    let sent: usize = line
        .split("\" 200 ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no byte count in {line}"));
    assert!(sent < CUT, "{line}");
}
