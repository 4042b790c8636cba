//! Clients that ask for a big download and then read nothing: each may hold only a little of
//! the server's memory (measured on the real binary's RSS).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::helpers::process::{open_descriptors, status_kib};
use crate::helpers::{Browser, Served, location, serve};

const ADMIN_PASSWORD: &str = "slow-clients-admin-password";
const STALLED: usize = 300;
const FILE_SIZE: usize = 50 * 1024 * 1024;

/// A served binary with one `FILE_SIZE` file uploaded, and a logged-in admin.
struct Setup {
    served: Served,
    admin: Browser,
    addr: String,
    url: String,
    _dir: tempfile::TempDir,
}

async fn serve_one_big_file(env: &[(&str, &str)]) -> Setup {
    let dir = tempfile::tempdir().expect("data dir");
    let mut env = env.to_vec();
    env.push(("PRIVATE_MEDIA_ADMIN_PASSWORD", ADMIN_PASSWORD));
    let served = serve(dir.path(), &env);
    let base = format!("http://127.0.0.1:{}", served.port);
    let admin = Browser::new(&base);
    assert_eq!(
        admin.login("admin", ADMIN_PASSWORD, None).await.status(),
        303
    );
    let bytes: Vec<u8> = (0..FILE_SIZE).map(|i| (i % 251) as u8).collect();
    let response = admin.upload("staff", &[("big.bin", &bytes)]).await;
    assert_eq!(response.status(), 303);
    let id = location(&response)
        .rsplit('/')
        .next()
        .expect("id")
        .to_owned();
    Setup {
        served,
        admin,
        addr: base.trim_start_matches("http://").to_owned(),
        url: format!("/files/{id}/download"),
        _dir: dir,
    }
}

/// Connections that asked for the download and read nothing.
fn stalled_downloads(setup: &Setup, count: usize) -> Vec<TcpStream> {
    let cookie = setup.admin.cookie_header();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\n\r\n",
        setup.url, setup.addr
    );
    (0..count)
        .map(|_| {
            let mut stream = TcpStream::connect(&setup.addr).expect("connect");
            stream.write_all(request.as_bytes()).expect("request");
            stream
        })
        .collect()
}

/// One whole download first, so pools and buffers a download needs exist already.
async fn download_once(setup: &Setup) {
    let whole = setup
        .admin
        .get(&setup.url)
        .await
        .bytes()
        .await
        .expect("download");
    assert_eq!(whole.len(), FILE_SIZE);
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_stalled_downloads_hold_little_memory() {
    let setup = serve_one_big_file(&[]).await;
    download_once(&setup).await;
    let pid = setup.served.child.id();
    let before = status_kib(pid, "VmRSS:");

    let stalled = stalled_downloads(&setup, STALLED);
    // Let the server fill every socket and give up the buffers of clients that read nothing.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = status_kib(pid, "VmRSS:");
    let added_mib = during.saturating_sub(before) / 1024;
    eprintln!("RSS {before} KiB before, {during} KiB with {STALLED} stalled downloads");
    assert!(
        added_mib < 64,
        "{STALLED} stalled downloads added {added_mib} MiB"
    );
    let health = reqwest::get(format!("http://{}/healthz", setup.addr))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    drop(stalled);
}

/// The connection limit is sized at three descriptors per connection (its socket, the
/// watchdog's duplicate, the file): a big download, sent with sendfile(2), must not need a
/// fourth, or connections that all download could exhaust the descriptor table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_download_holds_three_descriptors() {
    const DOWNLOADS: usize = 40;
    // What a worker thread opens once, at its first request (its SQLite change checker).
    const ONCE_PER_THREAD: usize = 8;
    let setup = serve_one_big_file(&[]).await;
    download_once(&setup).await;
    let pid = setup.served.child.id();
    let before = open_descriptors(pid);
    let stalled = stalled_downloads(&setup, DOWNLOADS);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = open_descriptors(pid);
    eprintln!("{before} descriptors before, {during} with {DOWNLOADS} stalled downloads");
    assert!(
        during <= before + 3 * DOWNLOADS + ONCE_PER_THREAD,
        "{DOWNLOADS} stalled downloads took {} descriptors",
        during - before
    );
    // Every one of them is really sending (each holds its file), not refused.
    assert!(during >= before + 3 * DOWNLOADS - 2, "{before} -> {during}");
    drop(stalled);
}

/// Past half the connection cap in big downloads, a client that takes nothing loses its
/// connection after 5 s instead of a minute, until the pressure is gone; a single stalled
/// download keeps its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_downloads_are_cut_after_five_seconds_under_pressure() {
    // A cap of 20 connections: more than 10 big downloads in flight is pressure.
    let setup = serve_one_big_file(&[("PRIVATE_MEDIA_SERVER__MAX_CONNECTIONS", "20")]).await;
    let calm = stalled_downloads(&setup, 1);
    tokio::time::sleep(Duration::from_secs(7)).await;
    let (ended, received) = read_what_is_left(calm.into_iter().next().expect("stream"));
    assert!(
        !ended,
        "the only stalled download was cut off after {received} bytes"
    );

    let pressed = stalled_downloads(&setup, 14);
    // 5 s, with room for a loaded machine.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut cut = 0;
    for stream in pressed {
        let (ended, received) = read_what_is_left(stream);
        if ended {
            assert!(received < FILE_SIZE, "a cut download ended complete");
            cut += 1;
        }
    }
    // 14 in flight against a threshold of 10: at least the 4 past it were cut.
    assert!(
        (4..14).contains(&cut),
        "{cut} of 14 stalled downloads were cut after 10 s under pressure"
    );
    let health = reqwest::get(format!("http://{}/healthz", setup.addr))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
}

/// Reads a stalled download's connection: whether the server had ended it (all that was
/// sent before the cut is read, then EOF) or it still streams (the whole file comes).
fn read_what_is_left(mut stream: TcpStream) -> (bool, usize) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut received = 0usize;
    let mut chunk = vec![0u8; 256 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => return (true, received),
            Ok(n) => {
                received += n;
                // Past the whole file, the connection plainly streams on.
                if received > FILE_SIZE {
                    return (false, received);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (true, received),
            Err(e) => panic!("reading a stalled download: {e} after {received} bytes"),
        }
    }
}
