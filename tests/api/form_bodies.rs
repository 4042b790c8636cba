//! Urlencoded forms are read whole by the CSRF check, before anything knows who is asking, and
//! anyone gets a session and a token from `/login`: so a form is small, refused at once when it
//! says it is larger, and a crowd of stalled anonymous forms costs the server little memory.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::helpers::process::status_kib;
use crate::helpers::{Browser, serve, spawn_app};

/// A session nobody signed into, as anyone gets it: its `Cookie` header and its token.
async fn anonymous_session(base: &str) -> (String, String) {
    let browser = Browser::new(base);
    let token = browser.csrf_token("/login").await;
    (browser.cookie_header(), token)
}

/// The head of a login POST whose body will be `length` bytes.
fn login_head(cookie: &str, length: usize) -> String {
    format!(
        "POST /login HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n"
    )
}

/// Sends `head` and `body` and leaves the connection open, as a client that stalls would;
/// the server may have refused and closed already, so a failed write is not an error.
fn send_and_stall(port: u16, head: &str, body: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body));
    stream
}

#[tokio::test]
async fn an_anonymous_form_longer_than_its_limit_gets_413_before_its_body_comes() {
    let app = spawn_app().await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let (cookie, token) = anonymous_session(&app.base).await;
    let start = format!("csrf_token={token}&password=");
    let mut stream = send_and_stall(port, &login_head(&cookie, 64 * 1024), start.as_bytes());
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

/// The attack as it came: 250 KB of a login form's 250.1 KB, then nothing, from hundreds of
/// connections at once; and as many forms just under the anonymous limit, stalled too.
#[tokio::test]
async fn stalled_anonymous_forms_keep_the_servers_memory_small() {
    const CROWD: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &[]);
    let base = format!("http://127.0.0.1:{}", served.port);
    let (cookie, token) = anonymous_session(&base).await;
    let pid = served.child.id();
    let before = status_kib(pid, "VmRSS:");

    let mut big = format!("csrf_token={token}&password=").into_bytes();
    big.resize(250_000, b'A');
    let big_head = login_head(&cookie, big.len() + 100);
    let mut small = format!("csrf_token={token}&password=").into_bytes();
    small.resize(15 * 1024, b'A');
    let small_head = login_head(&cookie, 16 * 1024);
    let port = served.port;
    let streams = tokio::task::spawn_blocking(move || {
        let mut streams = Vec::new();
        for _ in 0..CROWD {
            streams.push(send_and_stall(port, &big_head, &big));
            streams.push(send_and_stall(port, &small_head, &small));
        }
        streams
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let grown_mib = status_kib(pid, "VmRSS:").saturating_sub(before) / 1024;
    // Unbounded, the big bodies alone took about 0.5 MiB each (100 MiB here).
    assert!(
        grown_mib < 40,
        "{} stalled forms grew the server by {grown_mib} MiB",
        streams.len()
    );
    drop(streams);
}

/// The other ways a token can come: in the `X-CSRF-Token` header (any body), or in a
/// multipart form. A session nobody signed into gets no more through them: a declared body
/// over its limit and a body of unknown length are 413 before a byte is read, and multipart
/// (which none of its forms is) is sent to log in.
#[tokio::test]
async fn an_anonymous_session_gets_no_bigger_body_through_the_header_or_multipart() {
    let app = spawn_app().await;
    let port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let (cookie, token) = anonymous_session(&app.base).await;
    let answer_to = |head: String, body: &[u8]| {
        let mut stream = send_and_stall(port, &head, body);
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    };
    let declared = format!(
        "POST /login HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nX-CSRF-Token: {token}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 120000\r\n\r\n"
    );
    let answer = answer_to(declared, b"username=a&password=");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let chunked = format!(
        "POST /login HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nX-CSRF-Token: {token}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    let answer = answer_to(chunked, b"10\r\nusername=a&pass\r\n");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let multipart = format!(
        "POST /login HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\
         Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: 130000\r\n\r\n"
    );
    let answer = answer_to(
        multipart,
        b"--zz\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 303"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("location: /login"),
        "{answer}"
    );
    // A small form with the header token still logs in as before (a wrong password here).
    let small = Browser::new(&app.base);
    let token = small.csrf_token("/login").await;
    let response = small
        .client
        .post(small.url("/login"))
        .header("x-csrf-token", token)
        .form(&[("username", "nobody"), ("password", "wrong password 1")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
