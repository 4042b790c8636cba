//! Clients that ask for a big download and then read nothing: each may hold only a little of
//! the server's memory (measured on the real binary's RSS).

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::cli::serve;
use crate::helpers::{BOUNDARY, Browser, Part, location, multipart_body};

const ADMIN_PASSWORD: &str = "slow-clients-admin-password";
const STALLED: usize = 300;
const FILE_SIZE: usize = 50 * 1024 * 1024;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_stalled_downloads_hold_little_memory() {
    let dir = tempfile::tempdir().expect("data dir");
    let served = serve(
        dir.path(),
        &[("PRIVATE_MEDIA_ADMIN_PASSWORD", ADMIN_PASSWORD)],
    );
    let base = format!("http://127.0.0.1:{}", served.port);
    let admin = Browser::new(&base);
    assert_eq!(
        admin.login("admin", ADMIN_PASSWORD, None).await.status(),
        303
    );
    let token = admin.csrf_token("/admin/files/new").await;
    let bytes: Vec<u8> = (0..FILE_SIZE).map(|i| (i % 251) as u8).collect();
    let response = admin
        .client
        .post(admin.url("/admin/files"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart_body(&[
            Part::Text("csrf_token", &token),
            Part::Text("access", "staff"),
            Part::File("big.bin", &bytes),
        ]))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), 303);
    let id = location(&response)
        .rsplit('/')
        .next()
        .expect("id")
        .to_owned();
    drop(bytes);
    let url = format!("/files/{id}/download");
    // One whole download first, so pools and buffers a download needs exist already.
    let whole = admin.get(&url).await.bytes().await.expect("download");
    assert_eq!(whole.len(), FILE_SIZE);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(served.child.id());

    let cookie = admin.cookie_header();
    let addr = base.trim_start_matches("http://").to_owned();
    let request = format!("GET {url} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\r\n");
    let stalled: Vec<TcpStream> = (0..STALLED)
        .map(|_| {
            let mut stream = TcpStream::connect(&addr).expect("connect");
            stream.write_all(request.as_bytes()).expect("request");
            stream
        })
        .collect();
    // Let the server fill every socket and give up the buffers of clients that read nothing.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = rss_kib(served.child.id());
    let added_mib = during.saturating_sub(before) / 1024;
    eprintln!("RSS {before} KiB before, {during} KiB with {STALLED} stalled downloads");
    assert!(
        added_mib < 64,
        "{STALLED} stalled downloads added {added_mib} MiB"
    );
    let health = reqwest::get(format!("{base}/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    drop(stalled);
}
