//! HTTP/1.1 pipelining: requests sent ahead are answered in order, and a client that pipelines
//! and never reads the answers holds only a little of the server's memory and none of its CPU
//! (measured on the real binary). The bound lives in the vendored actix-http
//! (`vendor/actix-http`, docs/vendored-actix-http.md).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::cli::serve;
use crate::helpers::spawn_app;

const CONNECTIONS: usize = 10;
const REQUESTS_PER_CONNECTION: usize = 20_000;

fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("status field")
}

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
    let before = status_field(pid, "VmRSS:");

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
    let started = Instant::now();
    let quiet = loop {
        let ticks = cpu_ticks(pid);
        std::thread::sleep(Duration::from_secs(1));
        let spent = cpu_ticks(pid) - ticks;
        if spent < 10 {
            break true;
        }
        if started.elapsed() > Duration::from_secs(20) {
            eprintln!("still {spent} ticks of CPU a second");
            break false;
        }
    };
    let during = status_field(pid, "VmRSS:");
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
