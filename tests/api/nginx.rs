//! `server = "nginx"` proven with a real nginx (the Debian package) on loopback, configured
//! like the README says: log in, upload and download through nginx; the internal location is
//! not reachable from outside.
//!
//! Without nginx the test is skipped with a note, except under CI (`CI=true`), where
//! `.ci/run` installs it and a missing nginx is a failure, never a silent skip.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use private_media::config::DeliveryServer;
use private_media::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{Browser, PASSWORD, spawn_app_with, upload_file};

const NGINX: &str = "/usr/sbin/nginx";

pub(crate) struct Nginx {
    child: Child,
    pub(crate) base: String,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// nginx in front of the app at `app_port`, serving the storage `root` internally.
pub(crate) fn start_nginx(dir: &Path, app_port: u16, root: &Path) -> Nginx {
    let port = free_port();
    let dir_s = dir.display();
    let root = root.canonicalize().expect("root").display().to_string();
    // The two locations are the README's; the rest makes nginx run unprivileged in `dir`.
    let config = format!(
        r#"
worker_processes 1;
daemon off;
error_log {dir_s}/error.log warn;
pid {dir_s}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir_s}/body;
    proxy_temp_path {dir_s}/proxy;
    fastcgi_temp_path {dir_s}/fastcgi;
    uwsgi_temp_path {dir_s}/uwsgi;
    scgi_temp_path {dir_s}/scgi;
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 0;

        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_request_buffering off;
        }}

        location /private-x-accel-redirect/ {{
            internal;
            alias {root}/;
            disable_symlinks on;
            add_header X-Content-Type-Options nosniff always;
            # Headers nginx does not keep from the app's answer; share links carry their
            # token in the URL, so no page a file opens may send it on.
            add_header Referrer-Policy no-referrer always;
            add_header X-Robots-Tag "noindex, nofollow" always;
            # The app's own policy for this answer: no frame at all, but for a PDF that its file
            # page previews (a frame of the app's pages only).
            add_header Content-Security-Policy $upstream_http_content_security_policy always;
            add_header X-Frame-Options $upstream_http_x_frame_options always;
        }}
    }}
}}
"#
    );
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config).expect("write nginx.conf");
    let mut command = Command::new(NGINX);
    command
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // As root, nginx's workers would switch to `nobody`, who cannot read a private temp dir.
    if is_root() {
        command.arg("-g").arg("user root;");
    }
    let child = command.spawn().expect("start nginx");
    let nginx = Nginx {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not start: {}",
            std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    nginx
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

pub(crate) fn nginx_available() -> bool {
    if Path::new(NGINX).exists() {
        return true;
    }
    let under_ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !under_ci,
        "nginx is required under CI (.ci/run installs the Debian package)"
    );
    eprintln!("skipping: {NGINX} is not installed (apt-get install nginx)");
    false
}

#[tokio::test]
async fn downloads_go_through_a_real_nginx_with_x_accel_redirect() {
    if !nginx_available() {
        return;
    }
    let app = spawn_app_with(|s| s.delivery.server = DeliveryServer::Nginx).await;
    let app_port: u16 = app
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let nginx_dir = tempfile::tempdir().expect("nginx dir");
    let nginx = start_nginx(nginx_dir.path(), app_port, &app.storage_root());

    app.add_user("stella", Role::Staff);
    app.add_user("paul", Role::User);
    let staff = Browser::new(&nginx.base);
    let login = staff.login("stella", PASSWORD, Some("/admin/files")).await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER, "login through nginx");

    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let file = upload_file(&app, &staff, "résumé final.bin", &data, "staff", None, &[]).await;

    let url = format!("/files/{}/download", file.id);
    let response = staff.get(&url).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"resume final.bin\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20final.bin"
    );
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["cache-control"], "private, no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.get("x-accel-redirect").is_none());
    assert_eq!(headers["x-frame-options"], "DENY");
    let policy = headers["content-security-policy"].to_str().expect("ascii");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(response.bytes().await.expect("body"), data);

    // The PDF the file page frames as its preview may be framed by the app's pages only.
    let pdf = upload_file(
        &app,
        &staff,
        "a.pdf",
        b"%PDF-1.7 a document",
        "staff",
        None,
        &[],
    )
    .await;
    let framed = staff
        .get(&format!("/files/{}/download?inline=1", pdf.id))
        .await;
    assert_eq!(framed.status(), StatusCode::OK);
    assert_eq!(framed.headers()["x-frame-options"], "SAMEORIGIN");
    let policy = framed.headers()["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(policy.contains("frame-ancestors 'self'"), "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert_eq!(
        framed.bytes().await.expect("body"),
        &b"%PDF-1.7 a document"[..]
    );

    // nginx answers ranges itself.
    let partial = staff
        .client
        .get(staff.url(&url))
        .header("range", "bytes=1000-1999")
        .send()
        .await
        .expect("range");
    assert_eq!(partial.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(partial.bytes().await.expect("body"), &data[1000..2000]);

    // The internal location cannot be reached from outside, not even by staff.
    let direct = staff
        .get(&format!("/private-x-accel-redirect/{}", file.storage_key))
        .await;
    assert_eq!(direct.status(), StatusCode::NOT_FOUND);
    assert!(direct.bytes().await.expect("body").len() < data.len());

    // The access check still runs in the app.
    let plain = Browser::new(&nginx.base);
    assert_eq!(
        plain.login("paul", PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(plain.get(&url).await.status(), StatusCode::FORBIDDEN);
    let anonymous = Browser::new(&nginx.base);
    assert_eq!(anonymous.get(&url).await.status(), StatusCode::SEE_OTHER);
    drop(nginx);
}
