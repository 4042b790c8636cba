//! Paths never leave a storage: a corpus of traversal attempts against the path view, sent
//! as raw bytes (an HTTP client library would normalise `..` away before sending).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use private_media::domain::Role;

use crate::helpers::spawn_app;

const MARKER: &str = "TOP-SECRET-OUTSIDE-THE-ROOT";

/// Sends `GET {target}` as written, returns the status and the whole answer.
fn raw_get(base: &str, target: &str, cookie: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

fn corpus() -> Vec<String> {
    let dots = [
        "..",
        "%2e%2e",
        "%2E%2E",
        ".%2e",
        "%2e.",
        "%252e%252e",
        "%c0%ae%c0%ae",
        "%uff0e%uff0e",
        "..%00",
        "...",
    ];
    let slashes = ["/", "%2f", "%2F", "%5c", "%255c", "%252f", "%c0%af", "\\"];
    let targets = ["outside.txt", "secret.key", "private-media.sqlite3"];
    let mut paths = Vec::new();
    for dot in dots {
        for slash in slashes {
            for depth in 1..=2 {
                let up = format!("{dot}{slash}").repeat(depth);
                paths.push(format!("{up}{}", targets[depth % targets.len()]));
            }
        }
    }
    for extra in [
        "/etc/passwd",
        "%2fetc%2fpasswd",
        "//etc/passwd",
        "%2F%2Fetc%2Fpasswd",
        "etc/../../outside.txt",
        "a/%2e%2e/%2e%2e/outside.txt",
        "a/b/../../../outside.txt",
        "./outside.txt",
        "%2e/outside.txt",
        ".tmp",
        ".tmp/lock",
        "outside.txt%00.txt",
        "a%00/../../outside.txt",
        "%00",
        "link.txt",
        "linkdir/passwd",
        "linkdir%2fpasswd",
        "inner/link.txt",
        "....//....//outside.txt",
        "..;/outside.txt",
        "..%3b/outside.txt",
        "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "file:///etc/passwd",
        "C:%5cWindows%5cwin.ini",
        "%0d%0aSet-Cookie:%20x=1",
        "a%0a/../outside.txt",
    ] {
        paths.push(extra.to_owned());
    }
    paths.push("a".repeat(300));
    paths.push(format!("{}/x.txt", "a/".repeat(600)));
    paths.push(format!("{}outside.txt", "../".repeat(40)));
    paths
}

#[tokio::test]
async fn a_traversal_corpus_gets_404_and_no_byte_from_outside() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let data = app.data_dir.path();
    std::fs::write(data.join("outside.txt"), MARKER).unwrap();
    // Links inside the root that point out of it.
    let storage = app.storage_root();
    std::os::unix::fs::symlink(data.join("outside.txt"), storage.join("link.txt")).unwrap();
    std::os::unix::fs::symlink("/etc", storage.join("linkdir")).unwrap();
    std::fs::create_dir_all(storage.join("inner")).unwrap();
    std::os::unix::fs::symlink("../../outside.txt", storage.join("inner/link.txt")).unwrap();
    // A file that is inside: the corpus must not hide a view that does not work at all.
    std::fs::write(storage.join("inside.txt"), b"inside").unwrap();
    let cookie = root.cookie_header();
    let (status, answer) = raw_get(&app.base, "/private-media/inside.txt", &cookie);
    assert_eq!(status, 200, "{answer}");

    let corpus = corpus();
    assert!(corpus.len() >= 100, "only {} variants", corpus.len());
    let secret_key = std::fs::read_to_string(data.join("secret.key")).unwrap();
    let mut failures = Vec::new();
    for path in &corpus {
        let target = format!("/private-media/{path}");
        let (status, answer) = raw_get(&app.base, &target, &cookie);
        if status != 404 {
            failures.push(format!("{target}: {status}"));
        }
        if answer.contains(MARKER) || answer.contains("root:") || answer.contains(&secret_key) {
            failures.push(format!("{target}: leaked bytes from outside"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
