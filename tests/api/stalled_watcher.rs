//! PostgreSQL: a change watcher whose connection stalls (a network blip, a hung backend) must
//! stop vouching for its instance's cache within the bound the README states ("Security
//! model": other instances see a change within 250 ms), not serve stale answers until its
//! heartbeat times out. Found by an attack on the cache: the first watcher vouched for 1 s
//! after each heartbeat and served a changed rule stale for ~800 ms.
//!
//! Instance two reaches PostgreSQL through a TCP proxy in this test that can hold the bytes of
//! the watcher's connection only (recognised by its `application_name` in the startup packet),
//! so nothing outside this test is disturbed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use private_media::config::{DatabaseUrl, SecretKey, StorageSettings};
use private_media::domain::Role;
use reqwest::StatusCode;
use secrecy::ExposeSecret;

use crate::helpers::{Browser, TestDatabase, spawn_app_on, upload_file};

const SECRET: &str =
    "attack test secret shared by both instances, comfortably over sixty-four characters long";

/// Forwards 127.0.0.1:<port> to `upstream`; while `stall` is set, the bytes of a connection
/// that named itself `private-media-watch` are held (both ways), as a stalled network would.
/// Plain threads: the app connects synchronously on the test's one runtime thread.
fn proxy(upstream: String, stall: Arc<AtomicBool>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                continue;
            };
            let watcher = Arc::new(AtomicBool::new(false));
            let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream, sniff: bool| {
                let (watcher, stall) = (Arc::clone(&watcher), Arc::clone(&stall));
                std::thread::spawn(move || {
                    let mut buf = vec![0u8; 16384];
                    let mut seen = Vec::new();
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => {
                                let _ = to.shutdown(std::net::Shutdown::Both);
                                return;
                            }
                            Ok(n) => n,
                        };
                        if sniff && seen.len() < 4096 {
                            seen.extend_from_slice(&buf[..n]);
                            if seen.windows(19).any(|w| w == b"private-media-watch") {
                                watcher.store(true, Ordering::SeqCst);
                            }
                        }
                        while watcher.load(Ordering::SeqCst) && stall.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            };
            pipe(
                client.try_clone().unwrap(),
                server.try_clone().unwrap(),
                true,
            );
            pipe(server, client, false);
        }
    });
    port
}

/// `postgres://user@host:port/db?…` with host:port replaced by 127.0.0.1:`port`; and the
/// original host:port.
fn through(url: &str, port: u16) -> (String, String) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h.to_owned()),
        None => (String::new(), authority.to_owned()),
    };
    let hostport = if hostport.contains(':') {
        hostport
    } else {
        format!("{hostport}:5432")
    };
    (format!("{scheme}://{user}127.0.0.1:{port}{tail}"), hostport)
}

#[tokio::test]
async fn a_stalled_watcher_connection_never_leaves_a_stale_answer_past_250_ms() {
    let database = TestDatabase::fresh();
    if database.url.is_none() {
        return; // PostgreSQL only
    }
    let shared = tempfile::tempdir().unwrap();
    let root = shared.path().join("private");
    let stall = Arc::new(AtomicBool::new(false));
    let storage = |s: &mut private_media::config::Settings| {
        s.secret_key = Some(SecretKey::parse(SECRET.to_owned()).unwrap());
        s.storages.insert(
            "local".to_owned(),
            StorageSettings::Filesystem { root: root.clone() },
        );
    };
    let one = spawn_app_on(Arc::clone(&database), tempfile::tempdir().unwrap(), storage).await;
    let server = std::env::var("TEST_DATABASE_URL").unwrap();
    let (_, upstream) = through(&server, 0);
    let port = proxy(upstream, Arc::clone(&stall));
    let two = spawn_app_on(database, tempfile::tempdir().unwrap(), |s| {
        storage(s);
        let DatabaseUrl::Postgres(url) = &s.database else {
            panic!("postgres")
        };
        let (proxied, _) = through(url.expose_secret(), port);
        // In the clear, so that the proxy can tell the watcher's startup packet.
        let sep = if proxied.contains('?') { '&' } else { '?' };
        let proxied = format!("{proxied}{sep}sslmode=disable");
        s.database = DatabaseUrl::parse(&proxied).unwrap();
    })
    .await;

    let staff = one.logged_in("stella", Role::Staff).await;
    let paul = one.logged_in("paul", Role::User).await;
    let file = upload_file(
        &one,
        &staff,
        "salary.pdf",
        b"%PDF-1.4 s",
        "users",
        None,
        &["paul"],
    )
    .await;
    let url = format!("/files/{}/download", file.id);
    let paul_on_two = Browser::with_cookies_of(&paul, &two.base);
    // Long enough for two's watcher to start, LISTEN and vouch; the answer is then cached.
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1200) {
        assert_eq!(paul_on_two.get(&url).await.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    stall.store(true, Ordering::SeqCst);
    let path = format!("/admin/files/{}", file.id);
    let token = staff.csrf_token(&path).await;
    let fields = [
        ("csrf_token", token.as_str()),
        ("title", "Salary"),
        ("access", "owner"),
    ];
    assert_eq!(
        staff.post_form(&path, &fields).await.status(),
        StatusCode::SEE_OTHER
    );
    let changed = Instant::now();
    let mut stale_after = None;
    while changed.elapsed() < Duration::from_millis(1500) {
        let status = paul_on_two.get(&url).await.status();
        if status == StatusCode::OK && changed.elapsed() > Duration::from_millis(250) {
            stale_after = Some(changed.elapsed());
        }
    }
    stall.store(false, Ordering::SeqCst);
    assert!(
        stale_after.is_none(),
        "instance two still served the file {stale_after:?} after the rule change (bound 250 ms)"
    );
}
