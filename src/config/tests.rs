//! Unit tests of `Settings`: defaults, TOML, the environment, errors, secrets.
use std::time::Duration;

use super::*;

#[test]
fn empty_config_gives_the_embedded_default() {
    let s = from_toml("").expect("defaults are valid");
    assert_eq!(s.data_dir, PathBuf::from("data"));
    assert_eq!(
        s.sqlite_path(),
        Some(Path::new("data/private-media.sqlite3"))
    );
    assert_eq!(s.bind.to_string(), DEFAULT_BIND);
    assert!(
        !s.cookies_secure(),
        "loopback bind defaults to insecure cookies"
    );
    assert!(
        matches!(
            s.storages.get("local"),
            Some(StorageSettings::Filesystem { root }) if root == Path::new("data/private")
        ),
        "{:?}",
        s.storages
    );
    assert_eq!(s.upload.max_file_size, DEFAULT_MAX_FILE_SIZE);
    assert_eq!(s.delivery.server, DeliveryServer::App);
    assert_eq!(s.access.path_rule, PathRule::Superuser);
    assert_eq!(s.server.body_idle_timeout, Duration::from_secs(30));
    assert_eq!(s.server.body_min_rate, 1024);
    assert_eq!(s.server.max_connections, None);
}

#[test]
fn a_public_bind_turns_secure_cookies_on() {
    let s = from_toml("bind = \"0.0.0.0:8000\"").unwrap();
    assert!(s.cookies_secure());
    let s = from_toml("bind = \"0.0.0.0:8000\"\nsecure_cookies = false").unwrap();
    assert!(!s.cookies_secure());
}

#[test]
fn errors_name_the_key() {
    let cases = [
        ("[upload]\nmax_file_size = \"lots\"", "upload.max_file_size"),
        ("[upload]\nmax_fil_size = 1", "upload.max_fil_size"),
        ("secret_key = \"short\"", "secret_key"),
        ("bind = \"nowhere\"", "bind"),
        ("database_url = \"mysql://x\"", "DATABASE_URL"),
        ("[delivery]\nserver = \"caddy\"", "delivery.server"),
        ("[access]\npath_rule = \"everyone\"", "access.path_rule"),
        ("[upload]\nstorage = \"s3\"", "upload.storage"),
        (
            "[storages.media]\nkind = \"s3\"\nbucket = \"b\"\nfile_overwrite = true",
            "storages.media.file_overwrite",
        ),
        (
            "[storages.s3]\nkind = \"s3\"\nbucket = \"b\"\n[upload]\nstorage = \"s3\"\nmax_file_size = \"6GiB\"",
            "upload.max_file_size",
        ),
        (
            "[upload]\ncontent_types = [\"png\"]",
            "upload.content_types",
        ),
        ("[upload]\nupload_to = \"../%Y\"", "upload.upload_to"),
        ("[storages.media]\nroot = \"/x\"", "storages.media.kind"),
        (
            "[storages.media]\nkind = \"s3\"\nbucket = \"b\"\nencryption = \"rot13\"",
            "storages.media.encryption",
        ),
        (
            "[storages.media]\nkind = \"s3\"\nbucket = \"b\"\nencryption = \"aws:kms\"",
            "storages.media.kms_key_id",
        ),
        ("[storages.media]\nkind = \"s3\"", "storages.media.bucket"),
        (
            "[server]\ntrusted_proxies = [\"10.0.0.0/33\"]",
            "server.trusted_proxies",
        ),
        ("[server]\ntrusted_proxies = 7", "server.trusted_proxies"),
        ("[server]\ntrusted = []", "server.trusted"),
    ];
    for (toml, key) in cases {
        let err = from_toml(toml).expect_err(toml);
        assert_eq!(err.key, key, "for {toml:?}: {err}");
    }
}

const KEY: &str = "Zq7-session-key-0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEF";
const S3_SECRET: &str = "Zq7-s3-secret-access-key";
const DB_PASSWORD: &str = "Zq7-db-password";

fn with_secrets() -> Figment {
    Figment::from(Toml::string(&format!(
        "secret_key = \"{KEY}\"\n\
         database_url = \"postgres://media:{DB_PASSWORD}@db:5432/media?sslmode=require\"\n\
         [storages.media]\n\
         kind = \"s3\"\n\
         bucket = \"b\"\n\
         access_key_id = \"AKIDEXAMPLE\"\n\
         secret_access_key = \"{S3_SECRET}\"\n"
    )))
}

fn assert_no_secret(shown: &str) {
    for secret in [KEY, S3_SECRET, DB_PASSWORD, "Zq7"] {
        assert!(!shown.contains(secret), "{secret} shown in {shown}");
    }
}

#[test]
fn debug_of_the_settings_and_the_raw_tree_shows_no_secret() {
    let figment = with_secrets();
    let s = Settings::from_figment(figment.clone()).expect("valid");
    // The secrets are there for the code that uses them.
    let key = s.secret_key.as_ref().expect("a key");
    assert_eq!(key.expose_secret(), KEY);
    let Some(StorageSettings::S3(s3)) = s.storages.get("media") else {
        panic!("not s3: {:?}", s.storages);
    };
    let s3_secret = s3.secret_access_key.as_ref().expect("an S3 secret");
    assert_eq!(s3_secret.expose_secret(), S3_SECRET);
    assert_eq!(
        s.database.redacted(),
        "postgres://media:***@db:5432/media?sslmode=require"
    );

    let raw: Raw = figment.extract().expect("raw");
    for shown in [
        format!("{s:?}"),
        format!("{s:#?}"),
        format!("{:?}", s.clone()),
        format!("{:?}", s.database),
        format!("{:?}", s.secret_key),
        format!("{:?}", s.storages),
        format!("{s3:?}"),
        format!("{raw:?}"),
        format!("{raw:#?}"),
    ] {
        assert_no_secret(&shown);
    }
    // What is not secret is still shown.
    let shown = format!("{s:?}");
    assert!(shown.contains("AKIDEXAMPLE"), "{shown}");
    assert!(shown.contains("media:***@db:5432"), "{shown}");
}

#[test]
fn errors_do_not_quote_a_secret() {
    // serde's messages quote a value of the wrong type.
    let number = "98765432109876";
    let bind = from_toml(&format!("bind = {number}")).expect_err("a number");
    assert!(bind.to_string().contains(number), "{bind}");
    for (toml, key) in [
        (format!("secret_key = {number}"), "secret_key"),
        (format!("database_url = {number}"), "database_url"),
        (
            format!(
                "[storages.media]\nkind = \"s3\"\nbucket = \"b\"\nsecret_access_key = {number}"
            ),
            "storages.media.secret_access_key",
        ),
        (format!("secret_key = [\"{KEY}\"]"), "secret_key"),
        (
            format!("database_url = \"mysql://media:{DB_PASSWORD}@db\""),
            "DATABASE_URL",
        ),
        ("secret_key = \"Zq7-too-short\"".to_owned(), "secret_key"),
    ] {
        let err = from_toml(&toml).expect_err(&toml);
        assert_eq!(err.key, key, "{err}");
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(number), "{shown}");
        assert_no_secret(&shown);
    }
}
