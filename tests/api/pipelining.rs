//! HTTP/1.1 pipelining: requests sent ahead are answered in order, each framed for its own
//! request, and a client that pipelines and never reads the answers holds only a little of the
//! server's memory and none of its CPU (measured on the real binary). The bound lives in the
//! vendored actix-http (`vendor/actix-http`, docs/vendored-actix-http.md).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::helpers::process::status_kib;
use crate::helpers::{Browser, serve, spawn_app};

const CONNECTIONS: usize = 10;
const REQUESTS_PER_CONNECTION: usize = 20_000;

/// User plus system CPU time of the process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // The command name may hold spaces; the fields after it are plain numbers.
    let after_name = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name and state.
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// A connection that takes almost nothing in: its receive buffer is as small as the kernel
/// allows, so the server's answers back up at once.
fn tiny_receiver(addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket.connect(&addr.into()).expect("connect");
    socket.into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_never_read_hold_little_memory_and_no_cpu() {
    let dir = tempfile::tempdir().expect("data dir");
    let served = serve(dir.path(), &[]);
    let pid = served.child.id();
    let addr: SocketAddr = format!("127.0.0.1:{}", served.port).parse().expect("addr");
    let warm = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("healthz");
    assert_eq!(warm.status(), 200);
    std::thread::sleep(Duration::from_millis(300));
    let before = status_kib(pid, "VmRSS:");

    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".repeat(REQUESTS_PER_CONNECTION);
    let writers: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let request = request.clone();
            let mut stream = tiny_receiver(addr);
            std::thread::spawn(move || {
                stream
                    .set_write_timeout(Some(Duration::from_secs(4)))
                    .expect("timeout");
                // Stops when the server stops reading; the answers are never read.
                let _ = stream.write_all(&request);
                stream
            })
        })
        .collect();
    let streams: Vec<TcpStream> = writers
        .into_iter()
        .map(|w| w.join().expect("writer"))
        .collect();

    // Waiting for the clients must not mean spinning on them: once the requests it could
    // answer are answered (a few seconds in a debug build), the server goes quiet.
    // A spinning server burns a whole core or more (200 ticks in 2 s); a quiet one next to
    // nothing, even on a loaded machine.
    let started = Instant::now();
    let quiet = loop {
        let ticks = cpu_ticks(pid);
        std::thread::sleep(Duration::from_secs(2));
        let spent = cpu_ticks(pid) - ticks;
        if spent < 30 {
            break true;
        }
        if started.elapsed() > Duration::from_secs(40) {
            eprintln!("still {spent} ticks of CPU in 2 s");
            break false;
        }
    };
    let during = status_kib(pid, "VmRSS:");
    let added_mib = during.saturating_sub(before) / 1024;
    eprintln!("RSS {before} KiB before, {during} KiB with {CONNECTIONS} stalled pipelines");
    assert!(
        quiet,
        "the server keeps spinning on clients that read nothing"
    );
    assert!(
        added_mib < 32,
        "{CONNECTIONS} pipelines that are never read added {added_mib} MiB"
    );

    let health = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    drop(streams);
}

#[tokio::test]
async fn pipelined_requests_are_all_answered_in_order() {
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // Answers with a body, with none (a redirect), and error pages: more than the pipeline holds at once.
    let mut batch = Vec::new();
    let mut expected = Vec::new();
    for i in 0..300 {
        match i % 3 {
            0 => {
                batch.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
                expected.push("200");
            }
            1 => {
                // The anonymous redirect to the login page: an answer with no body.
                batch.extend_from_slice(b"GET /files HTTP/1.1\r\nHost: x\r\n\r\n");
                expected.push("303");
            }
            _ => {
                batch.extend_from_slice(b"GET /no-such-page HTTP/1.1\r\nHost: x\r\n\r\n");
                expected.push("404");
            }
        }
    }
    batch.extend_from_slice(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    expected.push("200");

    let received = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(&batch).expect("pipeline");
        let started = Instant::now();
        let mut received = Vec::new();
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
                Err(e) => panic!(
                    "answers stopped after {:?} and {} bytes: {e}",
                    started.elapsed(),
                    received.len()
                ),
            }
        }
        received
    })
    .await
    .expect("reader");

    let text = String::from_utf8_lossy(&received);
    let statuses: Vec<&str> = text
        .match_indices("HTTP/1.1 ")
        .map(|(at, _)| &text[at + 9..at + 12])
        .collect();
    assert_eq!(statuses, expected);
}

/// One answer as a client reads it off the connection.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: u16,
    closes: bool,
}

/// Splits `bytes` into the answers to `methods`, framing each by its own request (no body for
/// HEAD) and its `Content-Length`, as a client must; panics where the framing is wrong.
fn answers(bytes: &[u8], methods: &[&str]) -> Vec<Answer> {
    let mut at = 0;
    let mut found = Vec::new();
    for (i, method) in methods.iter().enumerate() {
        if at == bytes.len() {
            break;
        }
        let head_end = bytes[at..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("answer {i}: no complete head"))
            + at;
        let head = String::from_utf8_lossy(&bytes[at..head_end]).to_ascii_lowercase();
        let status: u16 = head
            .strip_prefix("http/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("answer {i} does not start with a status line: {head:?}"));
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().expect("content-length"));
        let closes = head.lines().any(|l| l == "connection: close");
        at = head_end + 4 + if *method == "HEAD" { 0 } else { length };
        assert!(at <= bytes.len(), "answer {i}: body cut short");
        found.push(Answer { status, closes });
    }
    assert_eq!(at, bytes.len(), "bytes left after the answers");
    found
}

/// Writes `batch` in one go, optionally ends the sending side, and reads until the server
/// closes or goes quiet for a second.
fn exchange(addr: &str, batch: &[u8], half_close: bool) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    stream.write_all(batch).expect("pipeline");
    if half_close {
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("half close");
    }
    let mut received = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break;
            }
            Err(e) => panic!("reading the answers: {e}"),
        }
    }
    received
}

fn request(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_sending_still_gets_every_answer() {
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let batch = request("GET", "/healthz", "").repeat(50);
    let received = tokio::task::spawn_blocking(move || exchange(&addr, &batch, true))
        .await
        .expect("client");
    let methods = vec!["GET"; 50];
    let got = answers(&received, &methods);
    assert_eq!(got.len(), 50);
    assert!(got.iter().all(|a| a.status == 200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_answer_is_framed_for_its_own_request() {
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // A HEAD answer carries no body, whatever the requests around it.
    let sequence = [
        ("GET", "/healthz"),
        ("HEAD", "/healthz"),
        ("GET", "/login"),
        ("HEAD", "/login"),
        ("HEAD", "/no-such-page"),
        ("GET", "/no-such-page"),
        ("GET", "/healthz"),
    ];
    let mut batch = Vec::new();
    for (method, path) in sequence {
        batch.extend(request(method, path, ""));
    }
    let received = tokio::task::spawn_blocking(move || exchange(&addr, &batch, false))
        .await
        .expect("client");
    let methods: Vec<&str> = sequence.iter().map(|(m, _)| *m).collect();
    let statuses: Vec<u16> = answers(&received, &methods)
        .iter()
        .map(|a| a.status)
        .collect();
    assert_eq!(statuses.len(), sequence.len(), "{statuses:?}");
    assert_eq!(statuses[0], 200);
    assert_eq!(statuses[6], 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_in_a_pipeline_ends_it_after_that_answer() {
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    for close_at in [3, 17, 20] {
        let mut batch = Vec::new();
        for i in 1..=25 {
            let extra = if i == close_at {
                "Connection: close\r\n"
            } else {
                ""
            };
            batch.extend(request("GET", "/healthz", extra));
        }
        let addr = addr.clone();
        let received = tokio::task::spawn_blocking(move || exchange(&addr, &batch, false))
            .await
            .expect("client");
        let got = answers(&received, &["GET"; 25]);
        let closing: Vec<usize> = got
            .iter()
            .enumerate()
            .filter(|(_, a)| a.closes)
            .map(|(i, _)| i + 1)
            .collect();
        assert_eq!(got.len(), close_at, "answers with close on #{close_at}");
        assert_eq!(closing, vec![close_at], "answers marked close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_with_a_body_anywhere_in_a_pipeline_is_answered_like_the_others() {
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    // A login POST with a session but a wrong token: refused (403) once its body is read,
    // which must not be taken for the next request nor leave the connection closing.
    let visitor = Browser::new(&app.base);
    assert_eq!(visitor.get("/login").await.status(), 200);
    let cookie = visitor.cookie_header();
    let body = "username=a&password=b&csrf_token=wrong&pad=".to_owned() + &"z".repeat(200);
    let post = format!(
        "POST /login HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    for post_at in [1, 16, 17, 18, 30] {
        let mut batch = Vec::new();
        for i in 1..=30 {
            if i == post_at {
                batch.extend_from_slice(post.as_bytes());
            } else {
                batch.extend(request("GET", "/no-such-page", ""));
            }
        }
        let addr = addr.clone();
        let received = tokio::task::spawn_blocking(move || exchange(&addr, &batch, false))
            .await
            .expect("client");
        let methods: Vec<&str> = (1..=30)
            .map(|i| if i == post_at { "POST" } else { "GET" })
            .collect();
        let got = answers(&received, &methods);
        assert_eq!(got.len(), 30, "answers with the POST at #{post_at}");
        assert!(
            got.iter().all(|a| !a.closes),
            "an answer said close with the POST at #{post_at}"
        );
        assert_eq!(got[post_at - 1].status, 403);
        assert!(
            got.iter()
                .enumerate()
                .all(|(i, a)| i == post_at - 1 || a.status == 404)
        );
    }
}

/// After a first request, a client that sends part of the next head and stops is cut off
/// like one that does so on a new connection (408 and close within the request timeout),
/// instead of holding the connection for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_second_request_head_times_out() {
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&addr).expect("connect");
        stream
            .write_all(&request("GET", "/healthz", ""))
            .expect("first");
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let mut first = [0u8; 4096];
        let n = stream.read(&mut first).expect("first answer");
        assert!(first[..n].starts_with(b"HTTP/1.1 200"));
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .expect("part of a second head");
        let started = Instant::now();
        let mut rest = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) => break Ok((started.elapsed(), rest)),
                Ok(n) => rest.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    break Ok((started.elapsed(), rest));
                }
                Err(e) => break Err(format!("still open after {:?}: {e}", started.elapsed())),
            }
        }
    })
    .await
    .expect("client");
    let (after, rest) = outcome.expect("the stalled head was not cut off");
    assert!(
        after < Duration::from_secs(12),
        "closed only after {after:?}"
    );
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.is_empty() || rest.starts_with("HTTP/1.1 408"),
        "answered {rest:?}"
    );
}
