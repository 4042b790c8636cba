//! Slow and surplus clients: stalled and trickling bodies get 408 and lose their connection,
//! uploads cut off that way store nothing, and past the request limit clients get 503 while
//! `/healthz` keeps answering.

use std::time::{Duration, Instant};

use private_media::domain::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{BOUNDARY, TestApp, multipart_file_head, spawn_app_with};

/// How long any single step of these tests may take before it counts as hanging.
const PATIENCE: Duration = Duration::from_secs(10);

fn address(app: &TestApp) -> String {
    app.base.trim_start_matches("http://").to_owned()
}

/// Connects and sends `head` (request line and headers, without the blank line) and `body`.
/// A head without a cookie gets an anonymous session's, as a browser that opened the login
/// page has: without any session a POST is refused before its body is read.
async fn send_partial(app: &TestApp, head: &str, body: &[u8]) -> TcpStream {
    let head = if head.contains("Cookie:") {
        head.to_owned()
    } else {
        let browser = app.browser();
        browser.get("/login").await;
        format!("{head}\r\nCookie: {}", browser.cookie_header())
    };
    let mut stream = TcpStream::connect(address(app)).await.expect("connect");
    stream
        .write_all(format!("{head}\r\n\r\n").as_bytes())
        .await
        .expect("write the head");
    stream.write_all(body).await.expect("write the body");
    stream
}

/// Everything the server sends until it closes the connection; panics if it never does.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("read");
    String::from_utf8_lossy(&answer).into_owned()
}

fn stalled_login() -> String {
    "POST /login HTTP/1.1\r\nHost: test\r\n\
     Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000"
        .to_owned()
}

#[tokio::test]
async fn a_stalled_body_gets_408_and_its_connection_closed() {
    let app = spawn_app_with(|s| s.server.body_idle_timeout = Duration::from_secs(1)).await;
    let started = Instant::now();
    let mut stream = send_partial(&app, &stalled_login(), b"username=a").await;
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "answered after {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
}

#[tokio::test]
async fn a_trickling_body_is_cut_off_by_the_minimum_rate() {
    let app = spawn_app_with(|s| {
        s.server.body_idle_timeout = Duration::from_secs(5);
        s.server.body_rate_grace = Duration::from_secs(1);
        s.server.body_min_rate = 1024;
    })
    .await;
    let started = Instant::now();
    let mut stream = send_partial(&app, &stalled_login(), b"u").await;
    // One byte every 100 ms never leaves the body idle, but averages 10 bytes a second.
    let mut answer = vec![0u8; 1024];
    let read = loop {
        tokio::select! {
            read = stream.read(&mut answer) => break read.expect("read"),
            _ = tokio::time::sleep(Duration::from_millis(100)) => {
                assert!(started.elapsed() < PATIENCE, "no answer to a trickling body");
                if stream.write_all(b"x").await.is_err() {
                    continue;
                }
            }
        }
    };
    let answer = String::from_utf8_lossy(&answer[..read]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(4), "answered after {waited:?}");
}

#[tokio::test]
async fn a_body_that_keeps_coming_is_not_cut_off() {
    let app = spawn_app_with(|s| {
        s.server.body_idle_timeout = Duration::from_secs(1);
        s.server.body_rate_grace = Duration::from_secs(1);
    })
    .await;
    let staff = app.logged_in("stella", Role::Staff).await;
    // 2 s of upload at well over the minimum rate, in chunks closer together than the idle
    // timeout: stored as usual.
    let token = staff.csrf_token("/admin/files/new").await;
    let head = multipart_file_head(&token, "staff", "slow.bin");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = std::iter::once(Ok(head.into_bytes()))
        .chain((0..8).map(|_| Ok(vec![7u8; 64 * 1024])))
        .chain(std::iter::once(Ok(
            format!("\r\n--{BOUNDARY}--\r\n").into_bytes()
        )))
        .collect();
    let body = futures_util::StreamExt::then(futures_util::stream::iter(chunks), |chunk| async {
        tokio::time::sleep(Duration::from_millis(250)).await;
        chunk
    });
    let response = staff
        .upload_request(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(app.file_rows().len(), 1);
}

#[tokio::test]
async fn a_stalled_upload_gets_408_and_stores_nothing() {
    let app = spawn_app_with(|s| s.server.body_idle_timeout = Duration::from_secs(1)).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;
    let body = format!(
        "{}{}",
        multipart_file_head(&token, "staff", "stalled.bin"),
        "x".repeat(20_000)
    );
    let head = format!(
        "POST /admin/files HTTP/1.1\r\nHost: test\r\nCookie: {}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: 10000000",
        staff.cookie_header()
    );
    let mut stream = send_partial(&app, &head, body.as_bytes()).await;
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // The temp file goes when the aborted upload is dropped, right after the answer.
    let deadline = Instant::now() + PATIENCE;
    while !app.temp_files().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.assert_nothing_stored();
}

#[tokio::test]
async fn with_300_stalled_clients_health_checks_still_answer_and_the_rest_get_503() {
    const STALLED: usize = 300;
    const MAX_REQUESTS: usize = 40;
    let app = spawn_app_with(|s| {
        // Long enough that every stalled body is still held while we look.
        s.server.body_idle_timeout = Duration::from_secs(60);
        s.server.max_connections = Some(400);
        s.server.max_requests = Some(MAX_REQUESTS);
    })
    .await;
    let mut streams = Vec::with_capacity(STALLED);
    for _ in 0..STALLED {
        streams.push(send_partial(&app, &stalled_login(), b"username=a").await);
    }

    let started = Instant::now();
    let health = reqwest::Client::new()
        .get(format!("{}/healthz", app.base))
        .timeout(PATIENCE)
        .send()
        .await
        .expect("/healthz answers");
    assert_eq!(health.status().as_u16(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Every client past the limit got a prompt 503 and lost its connection; the others are
    // still waiting for their bodies.
    let answers = futures_util::future::join_all(streams.iter_mut().map(|stream| async move {
        let mut answer = Vec::new();
        match tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut answer)).await {
            Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
            Err(_) => None,
        }
    }))
    .await;
    let refused: Vec<&String> = answers.iter().flatten().collect();
    let held = answers.iter().filter(|a| a.is_none()).count();
    assert_eq!(held, MAX_REQUESTS, "requests held");
    assert_eq!(refused.len(), STALLED - MAX_REQUESTS);
    for answer in refused {
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("retry-after: 5"),
            "{answer}"
        );
    }
}

#[tokio::test]
async fn a_stalled_chunked_body_gets_408_and_its_connection_closed() {
    let app = spawn_app_with(|s| s.server.body_idle_timeout = Duration::from_secs(1)).await;
    let head = "POST /login HTTP/1.1\r\nHost: test\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked";
    let mut stream = send_partial(&app, head, b"a\r\nusername=a\r\n").await;
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn a_chunked_body_refused_with_503_loses_its_connection() {
    let app = spawn_app_with(|s| {
        s.server.body_idle_timeout = Duration::from_secs(60);
        s.server.max_requests = Some(1);
    })
    .await;
    let head = "POST /login HTTP/1.1\r\nHost: test\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked";
    let _held = send_partial(&app, head, b"a\r\nusername=a\r\n").await;
    // Give the server a moment to take the first one in.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut refused = send_partial(&app, head, b"a\r\nusername=a\r\n").await;
    let answer = read_until_closed(&mut refused).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
}
