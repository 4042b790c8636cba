//! Test harness: each test gets its own app on 127.0.0.1:0 with its own data dir, and
//! browsers (cookie-keeping HTTP clients that do not follow redirects) to talk to it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use private_media::auth::password::NewPassword;
use private_media::config::{DatabaseUrl, Settings};
use private_media::db::Db;
use private_media::db::models::file::{FileRow, ListQuery};
use private_media::db::models::user::{NewUser, User};
use private_media::domain::{Role, Username};
use private_media::startup::{self, Application};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::{Response, StatusCode};
use std::sync::Arc;
use tempfile::TempDir;

pub mod process;
pub mod s3_server;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    pub db: Db,
    /// Where the audit log is written (on SQLite a file of its own).
    pub audit_db: Db,
    /// Keeps the test's PostgreSQL schema alive as long as an app uses it.
    _database: Arc<TestDatabase>,
    /// `DATABASE_URL` for the CLI, so it works on the app's own database.
    database_url: String,
    // Dropped last: removes the data dir.
    pub data_dir: TempDir,
}

/// The database of a test: a SQLite file in the data dir by default, or, when
/// `TEST_DATABASE_URL` names a PostgreSQL server, a fresh schema on it that is dropped when
/// the last app using it is gone.
pub struct TestDatabase {
    /// `None`: SQLite in the app's data dir.
    pub url: Option<String>,
    schema: Option<(String, String)>,
}

impl TestDatabase {
    pub fn fresh() -> Arc<Self> {
        let Some(server) = std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            return Arc::new(Self {
                url: None,
                schema: None,
            });
        };
        use diesel::Connection;
        use diesel::connection::SimpleConnection;
        let name = format!("test_{}", private_media::ids::random_id());
        let mut conn = diesel::PgConnection::establish(&server)
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unreachable: {e}"));
        conn.batch_execute(&format!("CREATE SCHEMA {name}"))
            .expect("create the test schema");
        let separator = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{separator}options=-c%20search_path%3D{name}");
        Arc::new(Self {
            url: Some(url),
            schema: Some((server, name)),
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((server, name)) = &self.schema {
            use diesel::Connection;
            use diesel::connection::SimpleConnection;
            if let Ok(mut conn) = diesel::PgConnection::establish(server) {
                let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"));
            }
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_in(tempfile::tempdir().expect("temp dir"), configure).await
}

/// An app on an existing data dir (to test what a start finds there).
pub async fn spawn_app_in(data_dir: TempDir, configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(TestDatabase::fresh(), data_dir, configure).await
}

/// An app on a given database (several apps on one database are instances of one site).
pub async fn spawn_app_on(
    database: Arc<TestDatabase>,
    data_dir: TempDir,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = Settings::for_data_dir(data_dir.path()).expect("default settings");
    settings.set_bind("127.0.0.1:0").expect("bind");
    if let Some(url) = &database.url {
        settings.database = DatabaseUrl::parse(url).expect("TEST_DATABASE_URL");
    }
    configure(&mut settings);
    let database_url = match &settings.database {
        DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        DatabaseUrl::Postgres(url) => secrecy::ExposeSecret::expose_secret(url).to_owned(),
    };
    let prepared = startup::prepare(settings).expect("prepare");
    let db = prepared.db.clone();
    let audit_db = prepared.audit_db.clone();
    let app = Application::build(prepared).expect("build");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        db,
        audit_db,
        _database: database,
        database_url,
        data_dir,
    }
}

impl TestApp {
    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    pub fn add_user(&self, name: &str, role: Role) -> User {
        let mut conn = self.db.get().expect("connection");
        User::create(
            &mut conn,
            NewUser {
                username: Username::parse(name).expect("username"),
                password_hash: NewPassword::parse(PASSWORD.into())
                    .expect("password")
                    .hash()
                    .expect("hash"),
                role,
            },
        )
        .expect("create user")
    }

    /// A browser logged in as a new user `name` with `role`.
    pub async fn logged_in(&self, name: &str, role: Role) -> Browser {
        self.add_user(name, role);
        let browser = self.browser();
        let response = browser.login(name, PASSWORD, None).await;
        assert_eq!(response.status().as_u16(), 303, "login of {name} failed");
        browser
    }

    /// The default storage's root folder.
    pub fn storage_root(&self) -> PathBuf {
        self.data_dir.path().join("private")
    }

    /// Every stored object (relative keys), outside the temp area.
    pub fn stored_objects(&self) -> Vec<String> {
        let root = self.storage_root();
        let mut found = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("read storage dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n != ".tmp") {
                        dirs.push(path);
                    }
                } else {
                    let key = path.strip_prefix(&root).expect("inside root");
                    found.push(key.to_string_lossy().into_owned());
                }
            }
        }
        found.sort();
        found
    }

    /// Temp files of uploads (lock files of live instances aside).
    pub fn temp_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let tmp = self.storage_root().join(".tmp");
        for instance in std::fs::read_dir(tmp).expect("temp dir") {
            let instance = instance.expect("entry").path();
            for file in std::fs::read_dir(&instance).expect("instance dir") {
                let file = file.expect("entry").path();
                if file.file_name().is_some_and(|n| n != "lock") {
                    found.push(file);
                }
            }
        }
        found
    }

    pub fn file_rows(&self) -> Vec<FileRow> {
        let mut conn = self.db.get().expect("connection");
        let everyone = ListQuery {
            search: None,
            page: 1,
            per_page: 500,
            sort: Default::default(),
            filters: Default::default(),
        };
        FileRow::admin_page(&mut conn, &everyone)
            .expect("files")
            .items
            .into_iter()
            .map(|f| f.file)
            .collect()
    }

    /// Nothing stored and nothing left over: no row, no object, no temp file.
    pub fn assert_nothing_stored(&self) {
        assert_eq!(self.file_rows().len(), 0, "rows were written");
        assert_eq!(
            self.stored_objects(),
            Vec::<String>::new(),
            "objects were written"
        );
        assert_eq!(
            self.temp_files(),
            Vec::<PathBuf>::new(),
            "temp files were left"
        );
    }

    /// Runs the CLI against this app's data dir.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let env = [("DATABASE_URL", self.database_url.as_str())];
        run_cli(self.data_dir.path(), args, stdin, &env)
    }

    /// `DATABASE_URL` of this app's database, for a CLI process a test drives itself.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Runs the CLI against this app's database, with more environment.
    pub fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut all = vec![("DATABASE_URL", self.database_url.as_str())];
        all.extend_from_slice(env);
        run_cli(self.data_dir.path(), args, None, &all)
    }
}

/// The binary, with no inherited configuration, in `dir` (so no stray private-media.toml).
pub fn cli_command(data_dir: &Path, args: &[&str]) -> Command {
    configured(
        Command::new(env!("CARGO_BIN_EXE_private-media")),
        data_dir,
        args,
    )
}

/// `command` (the binary, or something that runs it) with `args`, in `data_dir`, without the
/// configuration this process inherited.
pub fn configured(mut command: Command, data_dir: &Path, args: &[&str]) -> Command {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if key.starts_with("PRIVATE_MEDIA_") || key == "DATABASE_URL" {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .current_dir(data_dir)
        .env("PRIVATE_MEDIA_DATA_DIR", data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

pub fn run_cli(
    data_dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
    env: &[(&str, &str)],
) -> Output {
    use std::io::Write;
    let mut command = cli_command(data_dir, args);
    command.envs(env.iter().copied());
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = command.spawn().expect("run the binary");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait for the binary")
}

/// A `serve` process on a free port, killed when dropped.
pub struct Served {
    pub child: Child,
    pub port: u16,
    pub stdout: Vec<String>,
    /// What it logged up to and including the "serving on" line.
    pub stderr: Vec<String>,
    /// What it prints after that (`true` for stdout).
    later: mpsc::Receiver<(bool, String)>,
}

impl Served {
    /// The next line on stderr that satisfies `wanted`, waiting at most `within`.
    pub fn stderr_line(&self, within: Duration, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.later.recv_timeout(left) {
                Ok((false, line)) if wanted(&line) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(dir: &Path, env: &[(&str, &str)]) -> Served {
    let mut command = cli_command(dir, &["serve", "--bind", "127.0.0.1:0"]);
    command.envs(env.iter().copied());
    start_serving(command)
}

/// [`serve`] with its soft and hard `RLIMIT_NOFILE` (`ulimit -n`) set to `limit`: the shell
/// sets it and then becomes the server (`exec`), so the child is the server itself.
pub fn serve_with_open_file_limit(dir: &Path, env: &[(&str, &str)], limit: u64) -> Served {
    let mut shell = Command::new("sh");
    shell.args([
        "-c",
        "ulimit -n \"$0\" && exec \"$@\"",
        &limit.to_string(),
        env!("CARGO_BIN_EXE_private-media"),
    ]);
    let mut command = configured(shell, dir, &["serve", "--bind", "127.0.0.1:0"]);
    command.envs(env.iter().copied());
    start_serving(command)
}

fn start_serving(mut command: Command) -> Served {
    let (tx, rx) = mpsc::channel();
    let mut served = Served {
        child: command.spawn().expect("serve"),
        port: 0,
        stdout: Vec::new(),
        stderr: Vec::new(),
        later: rx,
    };
    let stdout = served.child.stdout.take().unwrap();
    let stderr = served.child.stderr.take().unwrap();
    let out_tx = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out_tx.send((true, line));
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send((false, line));
        }
    });
    loop {
        let (is_stdout, line) = served
            .later
            .recv_timeout(Duration::from_secs(60))
            .expect("serve did not start");
        if is_stdout {
            served.stdout.push(line);
            continue;
        }
        served.stderr.push(line.clone());
        if let Some(rest) = line.split("serving on http://127.0.0.1:").nth(1) {
            served.port = rest.trim_end_matches('/').parse().expect("port");
            // Whatever the app printed went out before this log line, but stdout and stderr
            // are read by two threads: give the stdout reader time to catch up.
            while let Ok((is_stdout, line)) = served.later.recv_timeout(Duration::from_secs(1)) {
                if is_stdout {
                    served.stdout.push(line);
                }
            }
            return served;
        }
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    jar: Arc<Jar>,
}

impl Browser {
    /// A browser talking to `base` (the app itself, or a proxy in front of it).
    pub fn new(base: &str) -> Self {
        let jar = Arc::new(Jar::default());
        Browser {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            jar,
        }
    }

    /// A browser at `base` holding the cookies `other` holds: the same user reaching another
    /// instance of the site through a load balancer.
    pub fn with_cookies_of(other: &Browser, base: &str) -> Self {
        let browser = Browser::new(base);
        let url: reqwest::Url = base.parse().expect("base url");
        for cookie in other.cookie_header().split("; ").filter(|c| !c.is_empty()) {
            browser.jar.add_cookie_str(cookie, &url);
        }
        browser
    }

    /// The `Cookie` header this browser sends now: what someone who copied it would hold.
    pub fn cookie_header(&self) -> String {
        let url: reqwest::Url = self.base.parse().expect("base url");
        self.jar
            .cookies(&url)
            .map(|v| v.to_str().expect("ascii cookie").to_owned())
            .unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_text(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("body")
    }

    /// The CSRF token from the form on `path`.
    pub async fn csrf_token(&self, path: &str) -> String {
        let page = self.get_text(path).await;
        csrf_token_in(&page).unwrap_or_else(|| panic!("no csrf token on {path}: {page}"))
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    pub async fn login(&self, username: &str, password: &str, next: Option<&str>) -> Response {
        let login_page = match next {
            Some(next) => format!("/login?next={}", urlencode(next)),
            None => "/login".to_owned(),
        };
        let token = self.csrf_token(&login_page).await;
        let mut fields = vec![
            ("csrf_token", token.as_str()),
            ("username", username),
            ("password", password),
        ];
        if let Some(next) = next {
            fields.push(("next", next));
        }
        self.post_form("/login", &fields).await
    }

    pub async fn logout(&self) -> Response {
        let token = self.csrf_token("/files").await;
        self.post_form("/logout", &[("csrf_token", &token)]).await
    }
}

pub fn csrf_token_in(page: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let start = page.find(marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].to_owned())
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .expect("ascii location")
        .to_owned()
}

/// One part of a hand-built multipart body: full control over names and order.
pub enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a [u8]),
}

pub const BOUNDARY: &str = "----private-media-test-boundary";

pub fn multipart_body(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                );
            }
            Part::File(file_name, bytes) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(bytes);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The start of an upload form whose file part is still to come (token, rule, the file's
/// headers): for bodies sent in pieces, stalled or never finished.
pub fn multipart_file_head(token: &str, access: &str, file_name: &str) -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"access\"\r\n\r\n{access}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
}

impl Browser {
    /// POSTs a hand-built multipart body to the upload route.
    pub async fn post_multipart(&self, parts: &[Part<'_>]) -> Response {
        self.try_post_multipart(parts).await.expect("POST upload")
    }

    /// [`Browser::post_multipart`] for a server that may go away: the send error, no panic.
    pub async fn try_post_multipart(&self, parts: &[Part<'_>]) -> reqwest::Result<Response> {
        self.upload_request(multipart_body(parts)).send().await
    }

    /// A POST of `body` (multipart with [`BOUNDARY`]) to the upload route, to add headers to
    /// or to send a body built by hand or streamed.
    pub fn upload_request(&self, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
        self.client
            .post(self.url("/admin/files"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body)
    }

    /// Uploads `files` with the `access` rule, as the form would (token first).
    pub async fn upload(&self, access: &str, files: &[(&str, &[u8])]) -> Response {
        let token = self.csrf_token("/admin/files/new").await;
        let mut parts = vec![
            Part::Text("csrf_token", &token),
            Part::Text("access", access),
        ];
        parts.extend(files.iter().map(|(name, bytes)| Part::File(name, bytes)));
        self.post_multipart(&parts).await
    }
}

/// Uploads one file as `staff` with the given rule, owner and listed users; returns its row.
pub async fn upload_file(
    app: &TestApp,
    staff: &Browser,
    name: &str,
    bytes: &[u8],
    access: &str,
    owner: Option<&str>,
    users: &[&str],
) -> FileRow {
    let token = staff.csrf_token("/admin/files/new").await;
    let mut parts = vec![
        Part::Text("csrf_token", &token),
        Part::Text("access", access),
    ];
    if let Some(owner) = owner {
        parts.push(Part::Text("owner", owner));
    }
    parts.extend(users.iter().map(|u| Part::Text("users", u)));
    parts.push(Part::File(name, bytes));
    let response = staff.post_multipart(&parts).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "upload of {name}");
    let id = location(&response)
        .rsplit('/')
        .next()
        .expect("an id")
        .to_owned();
    app.file_rows()
        .into_iter()
        .find(|f| f.id.as_str() == id)
        .expect("the uploaded row")
}

/// The smallest valid PNG: a 1×1 pixel.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Real values for the placeholders of the route table's patterns.
pub struct RouteIds<'a> {
    pub file_id: &'a str,
    pub user_id: &'a str,
    pub storage_key: &'a str,
}

/// `pattern` from `routes::table()` with its placeholders filled in; panics on a placeholder
/// it does not know, so a new kind of route makes the walking tests say what they miss.
pub fn fill_route(pattern: &str, ids: &RouteIds<'_>) -> String {
    if !pattern.contains('{') {
        return pattern.to_owned();
    }
    let filled = if pattern.starts_with("/admin/files/")
        || pattern.starts_with("/files/")
        || pattern.starts_with("/api/v1/files/")
    {
        pattern.replace("{id}", ids.file_id)
    } else if pattern.starts_with("/admin/users/") {
        pattern.replace("{id}", ids.user_id)
    } else if pattern.starts_with("/private-media/") {
        pattern.replace("{key:.*}", ids.storage_key)
    } else if pattern.starts_with("/static/") {
        pattern.replace("{name}", "style.css")
    } else if pattern.starts_with("/s/") {
        // A well-formed token of no link: the walks check what every route does before it
        // looks a link up (CSRF, caching), and share_links.rs the links themselves.
        pattern.replace("{token}", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    } else if pattern.starts_with("/admin/links/") || pattern.starts_with("/account/tokens/") {
        pattern.replace("{id}", "0123456789abcdef0123456789abcdef")
    } else {
        pattern.to_owned()
    };
    assert!(
        !filled.contains('{'),
        "the route walk does not know how to fill {pattern}"
    );
    filled
}
