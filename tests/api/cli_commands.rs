//! The binary's commands (`user`, `migrate`, `check`, `serve`): their output, the first admin
//! `serve` creates, and configuration errors (file or environment) as one clear line.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::helpers::{Browser, PASSWORD, run_cli, serve, text};

fn assert_one_clear_line(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
}

#[test]
fn user_add_twice_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_cli(
        dir.path(),
        &["user", "add", "alice", "--password-stdin"],
        Some("a good password\n"),
        &[],
    );
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("created user `alice`"));

    let second = run_cli(
        dir.path(),
        &["user", "add", "alice", "--password-stdin"],
        Some("another password\n"),
        &[],
    );
    assert_eq!(second.status.code(), Some(1));
    let stderr = text(&second.stderr);
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
}

#[test]
fn bad_usernames_and_passwords_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (args, stdin, expected) in [
        (
            vec!["user", "add", "bad name", "--password-stdin"],
            Some("a good password\n"),
            "invalid username",
        ),
        (
            vec!["user", "add", "bob", "--password-stdin"],
            Some("short\n"),
            "at least 8",
        ),
        (
            vec!["user", "add", "bob", "--password-stdin"],
            Some(""),
            "no password on stdin",
        ),
        (vec!["user", "add", "bob"], None, "--password-stdin"),
        (
            vec!["user", "set-password", "nobody", "--password-stdin"],
            Some("a good password\n"),
            "no user named",
        ),
        (vec!["user", "deactivate", "nobody"], None, "no user named"),
    ] {
        let output = run_cli(dir.path(), &args, stdin, &[]);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = text(&output.stderr);
        assert_one_clear_line(&stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let list = run_cli(dir.path(), &["user", "list"], None, &[]);
    assert!(
        !text(&list.stdout).contains("bob"),
        "a refused user was created"
    );
}

#[test]
fn user_list_shows_roles_and_state() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["user", "add", "alice", "--password-stdin"],
        vec!["user", "add", "stella", "--staff", "--password-stdin"],
        vec!["user", "add", "root", "--superuser", "--password-stdin"],
    ] {
        let output = run_cli(dir.path(), &args, Some("a good password\r\n"), &[]);
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    run_cli(dir.path(), &["user", "deactivate", "alice"], None, &[]);
    let list = text(&run_cli(dir.path(), &["user", "list"], None, &[]).stdout);
    let line = |name: &str| {
        list.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} missing: {list}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(line("alice")[1..3], ["user", "no"]);
    assert_eq!(line("stella")[1..3], ["staff", "yes"]);
    assert_eq!(line("root")[1..3], ["superuser", "yes"]);
}

#[test]
fn a_broken_config_value_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for (env, key) in [
        (
            ("PRIVATE_MEDIA_UPLOAD__MAX_FILE_SIZE", "lots"),
            "upload.max_file_size",
        ),
        (("PRIVATE_MEDIA_SECRET_KEY", "too short"), "secret_key"),
        (("PRIVATE_MEDIA_BIND", "somewhere"), "bind"),
        (
            ("PRIVATE_MEDIA_DELIVERY__SERVER", "caddy"),
            "delivery.server",
        ),
        (("PRIVATE_MEDIA_UPLOADS__STORAGE", "x"), "uploads"),
        (("DATABASE_URL", "mysql://db"), "DATABASE_URL"),
        (("PRIVATE_MEDIA_SECURE_COOKIES", "maybe"), "secure_cookies"),
    ] {
        let output = run_cli(dir.path(), &["migrate"], None, &[env]);
        assert_eq!(output.status.code(), Some(1), "{env:?}");
        let stderr = text(&output.stderr);
        assert_one_clear_line(&stderr);
        assert!(stderr.contains(&format!("`{key}`")), "{env:?}: {stderr}");
    }
    // Nothing started: no database was created.
    assert!(!dir.path().join("private-media.sqlite3").exists());
}

#[test]
fn a_broken_config_file_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("private-media.toml"),
        "[upload]\nmax_file_size = \"huge\"\n",
    )
    .unwrap();
    let output = run_cli(dir.path(), &["migrate"], None, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("`upload.max_file_size`"), "{stderr}");

    let other = dir.path().join("other.toml");
    std::fs::write(&other, "[access]\npath_rule = \"everyone\"\n").unwrap();
    let output = run_cli(
        dir.path(),
        &["migrate"],
        None,
        &[("PRIVATE_MEDIA_CONFIG", other.to_str().unwrap())],
    );
    let stderr = text(&output.stderr);
    assert!(stderr.contains("`access.path_rule`"), "{stderr}");

    let output = run_cli(
        dir.path(),
        &["migrate"],
        None,
        &[("PRIVATE_MEDIA_CONFIG", "/no/such/file.toml")],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("PRIVATE_MEDIA_CONFIG"));
}

#[test]
fn the_environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("private-media.toml"),
        "bind = \"nowhere\"\n",
    )
    .unwrap();
    let output = run_cli(
        dir.path(),
        &["migrate"],
        None,
        &[("PRIVATE_MEDIA_BIND", "127.0.0.1:9999")],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn migrate_creates_the_data_dir_and_the_database_and_no_secret_key() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("fresh");
    let output = run_cli(
        parent.path(),
        &["migrate"],
        None,
        &[("PRIVATE_MEDIA_DATA_DIR", data.to_str().unwrap())],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(data.join("private-media.sqlite3").is_file());
    let mode_of = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode_of(&data), 0o700, "the data dir");
    assert_eq!(
        mode_of(&data.join("private-media.sqlite3")),
        0o600,
        "the database"
    );
    // The secret key and the storage folder are for `serve` to make.
    assert!(
        !data.join("secret.key").exists(),
        "migrate made a secret key"
    );
    assert!(
        !data.join("private").exists(),
        "migrate made the storage folder"
    );
}

#[test]
fn serve_creates_a_private_secret_key_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("secret.key");
    let env = [("PRIVATE_MEDIA_ADMIN_PASSWORD", PASSWORD)];
    drop(serve(dir.path(), &env));
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(std::fs::read_to_string(&key).unwrap().len() >= 64);
    // A second start keeps the key.
    let before = std::fs::read(&key).unwrap();
    drop(serve(dir.path(), &env));
    assert_eq!(std::fs::read(&key).unwrap(), before);
}

/// Runs the `migrate` and `user` commands, each expected to succeed on a fresh data dir, and
/// `after_each` after each one.
fn run_database_commands(dir: &Path, mut after_each: impl FnMut(&[&str])) {
    for (args, stdin) in [
        (vec!["migrate"], None),
        (
            vec!["user", "add", "alice", "--password-stdin"],
            Some("a good password\n"),
        ),
        (vec!["user", "list"], None),
        (
            vec!["user", "set-password", "alice", "--password-stdin"],
            Some("another password\n"),
        ),
        (vec!["user", "deactivate", "alice"], None),
        (vec!["user", "activate", "alice"], None),
        (vec!["migrate"], None),
    ] {
        let output = run_cli(dir, &args, stdin, &[]);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        after_each(&args);
    }
}

/// What a killed instance leaves in the default storage: its temp folder, a lock nobody
/// holds, a partial upload. Returns the temp folder.
fn leave_a_dead_instance(data_dir: &Path) -> std::path::PathBuf {
    let dead = data_dir.join("private").join(".tmp").join("deadbeef");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join("lock"), b"").unwrap();
    std::fs::write(dead.join("upload-0123456"), b"left over").unwrap();
    dead
}

#[test]
fn database_commands_create_no_secret_key_and_leave_storage_alone() {
    let dir = tempfile::tempdir().unwrap();
    // A start sweeps a dead instance's leftovers; commands that manage the database must not.
    let dead = leave_a_dead_instance(dir.path());
    let storage = dir.path().join("private");
    let before = tree(&storage);

    run_database_commands(dir.path(), |args| {
        assert!(
            !dir.path().join("secret.key").exists(),
            "{args:?} made a secret key"
        );
        assert_eq!(tree(&storage), before, "{args:?} changed the storage");
    });
    let list = text(&run_cli(dir.path(), &["user", "list"], None, &[]).stdout);
    assert!(list.contains("alice"), "{list}");

    // A start is what sweeps it, and makes the key.
    let served = serve(dir.path(), &[("PRIVATE_MEDIA_ADMIN_PASSWORD", PASSWORD)]);
    assert!(!dead.exists(), "serve kept a dead instance's temp folder");
    assert!(dir.path().join("secret.key").is_file());
    drop(served);
}

#[test]
fn database_commands_create_no_storage_folder() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let media = elsewhere.path().join("media");
    std::fs::write(
        dir.path().join("private-media.toml"),
        format!(
            "[storages.media]\nkind = \"filesystem\"\nroot = \"{}\"\n",
            media.display()
        ),
    )
    .unwrap();
    run_database_commands(dir.path(), |_| {});
    let mut made: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        // The database, and the audit log's file beside it (the commands record changes).
        .filter(|name| {
            !name.starts_with("private-media.sqlite3")
                && !name.starts_with("private-media-audit.sqlite3")
        })
        .collect();
    made.sort();
    assert_eq!(made, ["private-media.toml"], "besides the database");
    assert!(!media.exists(), "a command made the storage folder");
}

async fn can_log_in(port: u16, username: &str, password: &str) -> bool {
    let browser = Browser::new(&format!("http://127.0.0.1:{port}"));
    browser.login(username, password, None).await.status() == 303
}

#[tokio::test]
async fn the_first_serve_creates_admin_and_prints_its_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let password = {
        let served = serve(dir.path(), &[]);
        let line = served
            .stdout
            .iter()
            .find(|l| l.contains("password"))
            .unwrap_or_else(|| panic!("no password printed: {:?}", served.stdout));
        let password = line.rsplit(' ').next().unwrap().to_owned();
        assert!(password.len() >= 16, "{line}");
        assert!(can_log_in(served.port, "admin", &password).await);
        password
    };
    let served = serve(dir.path(), &[]);
    assert!(
        served.stdout.is_empty(),
        "printed again: {:?}",
        served.stdout
    );
    assert!(can_log_in(served.port, "admin", &password).await);
}

#[tokio::test]
async fn the_first_admin_can_take_its_password_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &[("PRIVATE_MEDIA_ADMIN_PASSWORD", PASSWORD)]);
    assert!(served.stdout.is_empty(), "{:?}", served.stdout);
    assert!(can_log_in(served.port, "admin", PASSWORD).await);
}

#[test]
fn serve_refuses_an_address_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run_cli(
        dir.path(),
        &["serve", "--bind", &addr],
        None,
        &[("PRIVATE_MEDIA_ADMIN_PASSWORD", PASSWORD)],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unreachable_postgres_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    // Port 1 on loopback: nothing listens there.
    let output = run_cli(
        dir.path(),
        &["migrate"],
        None,
        &[(
            "DATABASE_URL",
            "postgres://nobody:secret-pw@127.0.0.1:1/media",
        )],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("PostgreSQL"), "{stderr}");
    assert!(
        !stderr.contains("secret-pw"),
        "the password leaked: {stderr}"
    );
}

#[test]
fn a_bad_value_from_the_environment_names_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (env, variable) in [
        (
            ("PRIVATE_MEDIA_BIND", "not-an-address"),
            "PRIVATE_MEDIA_BIND",
        ),
        (
            ("PRIVATE_MEDIA_UPLOAD__MAX_FILE_SIZE", "lots"),
            "PRIVATE_MEDIA_UPLOAD__MAX_FILE_SIZE",
        ),
        (
            ("PRIVATE_MEDIA_UPLOADS__STORAGE", "x"),
            "PRIVATE_MEDIA_UPLOADS__STORAGE",
        ),
        (
            ("PRIVATE_MEDIA_SECURE_COOKIES", "maybe"),
            "PRIVATE_MEDIA_SECURE_COOKIES",
        ),
        (
            ("DATABASE_URL", "mysql://db"),
            "environment variable DATABASE_URL",
        ),
        (
            (
                "PRIVATE_MEDIA_SERVER__TRUSTED_PROXIES",
                "[127.0.0.1, 10.0.0.0/33]",
            ),
            "PRIVATE_MEDIA_SERVER__TRUSTED_PROXIES",
        ),
    ] {
        let output = run_cli(dir.path(), &["migrate"], None, &[env]);
        assert_eq!(output.status.code(), Some(1), "{env:?}");
        let stderr = text(&output.stderr);
        assert_one_clear_line(&stderr);
        assert!(stderr.contains(variable), "{env:?}: {stderr}");
    }
}

#[test]
fn a_bad_value_from_the_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("private-media.toml"),
        "bind = \"nowhere\"\n",
    )
    .unwrap();
    let output = run_cli(dir.path(), &["migrate"], None, &[]);
    let stderr = text(&output.stderr);
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("`bind`"), "{stderr}");
    assert!(stderr.contains("private-media.toml"), "{stderr}");
    assert!(!stderr.contains("environment"), "{stderr}");
}

#[test]
fn a_toml_syntax_error_is_one_line_with_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("private-media.toml"),
        "data_dir = \"data\"\nbind = \"127.0.0.1:8000\n",
    )
    .unwrap();
    let output = run_cli(dir.path(), &["migrate"], None, &[]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("line 2, column"), "{stderr}");
    assert!(stderr.contains("private-media.toml"), "{stderr}");
}

#[test]
fn kubernetes_service_variables_are_ignored_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_cli(
        dir.path(),
        &["migrate"],
        None,
        &[
            ("PRIVATE_MEDIA_PORT", "tcp://127.0.0.1:8000"),
            ("PRIVATE_MEDIA_PORT_8000_TCP_ADDR", "127.0.0.1"),
            ("PRIVATE_MEDIA_SERVICE_HOST", "127.0.0.1"),
            ("PRIVATE_MEDIA_SERVICE_PORT", "8000"),
        ],
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    for variable in ["PRIVATE_MEDIA_PORT", "PRIVATE_MEDIA_SERVICE_HOST"] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("WARN") && l.contains(&format!("ignoring {variable}:"))),
            "{stderr}"
        );
    }
    assert!(stderr.contains("enableServiceLinks"), "{stderr}");
    // Other unknown keys are still errors.
    let output = run_cli(
        dir.path(),
        &["migrate"],
        None,
        &[("PRIVATE_MEDIA_PORTS", "1")],
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn trusted_proxies_come_from_the_environment_as_a_list() {
    let dir = tempfile::tempdir().unwrap();
    for value in [
        "[127.0.0.1, ::1, 10.0.0.0/8]",
        "127.0.0.1,10.0.0.0/8",
        "127.0.0.1",
    ] {
        let output = run_cli(
            dir.path(),
            &["migrate"],
            None,
            &[("PRIVATE_MEDIA_SERVER__TRUSTED_PROXIES", value)],
        );
        assert!(output.status.success(), "{value}: {}", text(&output.stderr));
    }
}

#[test]
fn an_invalid_log_filter_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_cli(
        dir.path(),
        &["migrate"],
        None,
        &[("PRIVATE_MEDIA_LOG", "private_media=loud")],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("PRIVATE_MEDIA_LOG"), "{stderr}");
    assert!(!dir.path().join("private-media.sqlite3").exists());
    let output = run_cli(
        dir.path(),
        &["migrate"],
        None,
        &[("PRIVATE_MEDIA_LOG", "debug")],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
}

#[test]
fn serve_on_a_taken_port_creates_no_admin_and_prints_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run_cli(dir.path(), &["serve", "--bind", &addr], None, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("cannot listen on"));
    let stdout = text(&output.stdout);
    assert!(!stdout.contains("password"), "a lost password: {stdout}");
    let list = text(&run_cli(dir.path(), &["user", "list"], None, &[]).stdout);
    assert!(!list.contains("admin"), "{list}");
    // The next start, on a free port, creates admin and shows its password.
    let served = serve(dir.path(), &[]);
    assert!(
        served.stdout.iter().any(|l| l.contains("password")),
        "{:?}",
        served.stdout
    );
}

#[test]
fn serve_says_when_users_exist_but_no_superuser() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_cli(
        dir.path(),
        &["user", "add", "alice", "--staff", "--password-stdin"],
        Some("a good password\n"),
        &[],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let served = serve(dir.path(), &[]);
    assert!(
        served.stdout.is_empty(),
        "admin was created: {:?}",
        served.stdout
    );
    assert!(
        served
            .stderr
            .iter()
            .any(|l| l.contains("WARN") && l.contains("no active superuser")),
        "{:?}",
        served.stderr
    );
    drop(served);
    // With a superuser, nothing is said.
    run_cli(
        dir.path(),
        &["user", "add", "root", "--superuser", "--password-stdin"],
        Some("a good password\n"),
        &[],
    );
    let served = serve(dir.path(), &[]);
    assert!(
        !served.stderr.iter().any(|l| l.contains("superuser")),
        "{:?}",
        served.stderr
    );
}

#[test]
fn migrate_says_how_many_migrations_it_applied() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_cli(dir.path(), &["migrate"], None, &[]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let stdout = text(&first.stdout);
    let applied: usize = stdout
        .trim()
        .strip_prefix("applied ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(applied >= 4, "{stdout}");
    let again = text(&run_cli(dir.path(), &["migrate"], None, &[]).stdout);
    assert!(again.contains("no migrations pending"), "{again}");
}

#[test]
fn check_creates_nothing_and_shows_what_it_resolved() {
    let parent = tempfile::tempdir().unwrap();
    let data = parent.path().join("fresh");
    let env = [("PRIVATE_MEDIA_DATA_DIR", data.to_str().unwrap())];
    let output = run_cli(parent.path(), &["check"], None, &env);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(!data.exists(), "check created the data dir: {stdout}");
    assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
    assert!(
        stdout.contains(&format!("data dir: {} (not created yet)", data.display())),
        "{stdout}"
    );
    let sqlite = data.join("private-media.sqlite3");
    assert!(
        stdout.contains(&format!("database url: sqlite://{}", sqlite.display())),
        "{stdout}"
    );
    assert!(stdout.contains("database: not created yet"), "{stdout}");

    // After a migrate, check finds everything; a PostgreSQL password is never shown.
    run_cli(parent.path(), &["migrate"], None, &env);
    let output = run_cli(parent.path(), &["check"], None, &env);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("database: ok"), "{stdout}");
    let output = run_cli(
        parent.path(),
        &["check"],
        None,
        &[
            env[0],
            (
                "DATABASE_URL",
                "postgres://media:secret-pw@127.0.0.1:1/media",
            ),
        ],
    );
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("database url: postgres://media:***@127.0.0.1:1/media"),
        "{stdout}"
    );
    assert!(!stdout.contains("secret-pw"), "{stdout}");
}

#[test]
fn a_read_only_database_is_found_at_start() {
    // Root writes to any file, so SQLite cannot be made read-only here; a PostgreSQL session
    // that is read-only by default stands in for a read-only user or a replica.
    let database = crate::helpers::TestDatabase::fresh();
    let Some(url) = database.url.clone() else {
        eprintln!("skipped: needs TEST_DATABASE_URL");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let migrated = run_cli(dir.path(), &["migrate"], None, &[("DATABASE_URL", &url)]);
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    let read_only = format!("{url}%20-c%20default_transaction_read_only%3Don");
    let output = run_cli(
        dir.path(),
        &["serve", "--bind", "127.0.0.1:0"],
        None,
        &[
            ("DATABASE_URL", &read_only),
            ("PRIVATE_MEDIA_ADMIN_PASSWORD", PASSWORD),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert_one_clear_line(&stderr);
    // The migration step finds it on PostgreSQL; the write probe after it, where migrations
    // write nothing.
    assert!(
        stderr.contains("read-only") || stderr.contains("cannot be written to"),
        "{stderr}"
    );
}

/// Every path under `root` (folders marked with a trailing `/`), files with a digest of
/// their contents.
fn tree(root: &Path) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let mut found = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                found.push(format!("{name}/"));
                dirs.push(path);
            } else {
                let digest = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
                found.push(format!("{name} {}", &digest[..16]));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn check_leaves_a_dead_instances_temp_folder_to_the_next_serve() {
    let dir = tempfile::tempdir().unwrap();
    let migrated = run_cli(dir.path(), &["migrate"], None, &[]);
    assert!(migrated.status.success(), "{}", text(&migrated.stderr));
    let dead = leave_a_dead_instance(dir.path());
    let before = tree(dir.path());

    let output = run_cli(dir.path(), &["check"], None, &[]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    assert!(
        stdout.contains("storage `local` (filesystem): ok"),
        "{stdout}"
    );
    let after = tree(dir.path());
    let gone: Vec<_> = before.iter().filter(|p| !after.contains(p)).collect();
    let made: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
    assert!(
        gone.is_empty() && made.is_empty(),
        "check changed the data dir: gone {gone:?}, made {made:?}"
    );

    // A start is what sweeps it.
    let served = serve(dir.path(), &[("PRIVATE_MEDIA_ADMIN_PASSWORD", PASSWORD)]);
    assert!(!dead.exists(), "serve kept a dead instance's temp folder");
    drop(served);
}
