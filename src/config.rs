//! Settings: built-in defaults, then an optional TOML file, then the environment (SPEC 3).
//!
//! Loading happens in two steps. `figment` merges the sources into a `Raw` tree whose fields
//! are all optional, so a typo or a wrong type is reported with the key that carries it. Then
//! `Raw::validate` turns that tree into `Settings`, whose fields can only hold usable values.
//! Nothing here is global: the CLI loads one `Settings` and passes it down, tests build their own.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytesize::ByteSize;
use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;

mod sources;

use crate::client_addr::TrustedProxies;

/// The largest object S3 copies in one request.
const S3_MAX_COPY: u64 = 5 * 1024 * 1024 * 1024;

/// A configuration problem, always tied to the key that caused it.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: `{key}`: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

impl ConfigError {
    fn new(key: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub bind: SocketAddr,
    /// `None`: use (or create) `DATA_DIR/secret.key`.
    pub secret_key: Option<SecretKey>,
    /// `None`: decided by the bind address, see `cookies_secure`.
    pub secure_cookies: Option<bool>,
    pub storages: BTreeMap<String, StorageSettings>,
    pub upload: UploadSettings,
    pub delivery: DeliverySettings,
    pub access: AccessSettings,
    pub server: ServerSettings,
}

/// How long a request body may take, and how many connections and requests are served at
/// once (`[server]`; README: "Slow clients and overload").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSettings {
    /// A body that sends nothing for this long is answered 408.
    pub body_idle_timeout: Duration,
    /// After `body_rate_grace`, a body averaging fewer bytes per second than this is answered
    /// 408; 0 turns the check off.
    pub body_min_rate: u64,
    pub body_rate_grace: Duration,
    /// Open connections; `None`: sized from the file-descriptor limit at start.
    pub max_connections: Option<usize>,
    /// Requests handled at once before new ones get 503; `None`: derived from the connections.
    pub max_requests: Option<usize>,
    /// Proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: TrustedProxies,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// The URL to show a person: a PostgreSQL password is replaced by `***`.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite://{}", path.display()),
            Self::Postgres(url) => redact_postgres(url),
        }
    }

    pub fn parse(url: &str) -> Result<Self, String> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("`sqlite://` needs a file path, e.g. sqlite://data/db.sqlite3".into());
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres(url.to_owned()))
        } else {
            Err("expected `sqlite://PATH` or `postgres://…`".into())
        }
    }
}

/// `postgres://user:secret@host/db?password=secret` → `postgres://user:***@host/db?password=***`.
fn redact_postgres(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Key material for session cookies and signed links: at least 64 characters.
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    pub const MIN_LEN: usize = 64;

    pub fn parse(value: String) -> Result<Self, String> {
        let len = value.chars().count();
        if len < Self::MIN_LEN {
            return Err(format!(
                "must be at least {} characters long (got {len})",
                Self::MIN_LEN
            ));
        }
        Ok(Self(value))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageSettings {
    Filesystem { root: PathBuf },
    S3(S3Settings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    pub location: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub querystring_auth: bool,
    pub querystring_expire: u64,
    pub encryption: Option<S3Encryption>,
    pub file_overwrite: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Encryption {
    Aes256,
    Kms { key_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSettings {
    pub storage: String,
    pub upload_to: String,
    pub max_file_size: u64,
    pub content_types: Vec<ContentTypePattern>,
}

/// `type/subtype`, `type/*` or `*/*`, lower case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentTypePattern(String);

impl ContentTypePattern {
    pub fn parse(value: &str) -> Result<Self, String> {
        let lower = value.trim().to_ascii_lowercase();
        let valid_part = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
        };
        match lower.split_once('/') {
            Some(("*", "*")) => Ok(Self(lower)),
            Some((ty, "*")) if valid_part(ty) => Ok(Self(lower)),
            Some((ty, sub)) if valid_part(ty) && valid_part(sub) => Ok(Self(lower)),
            _ => Err(format!(
                "`{value}` is not a content type (expected e.g. `image/png` or `image/*`)"
            )),
        }
    }

    pub fn matches(&self, essence: &str) -> bool {
        let essence = essence.to_ascii_lowercase();
        match self.0.split_once('/') {
            Some(("*", "*")) => true,
            Some((ty, "*")) => essence.split_once('/').is_some_and(|(t, _)| t == ty),
            _ => self.0 == essence,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    pub server: DeliveryServer,
    pub internal_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryServer {
    App,
    Nginx,
    Apache,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSettings {
    pub path_rule: PathRule,
}

/// Who may use the path view (`/private-media/{key}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathRule {
    Superuser,
    Staff,
    Authenticated,
}

// ---- the raw, all-optional tree that figment fills ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    bind: Option<String>,
    secret_key: Option<String>,
    secure_cookies: Option<bool>,
    #[serde(default)]
    storages: BTreeMap<String, RawStorage>,
    #[serde(default)]
    upload: RawUpload,
    #[serde(default)]
    delivery: RawDelivery,
    #[serde(default)]
    access: RawAccess,
    #[serde(default)]
    server: RawServer,
}

/// A list from TOML (`["10.0.0.1", "10.0.0.0/8"]`) or the environment, where figment reads
/// `[10.0.0.1, 10.0.0.0/8]` as a list but a lone `10.0.0.1` or `10.0.0.1,10.0.0.2` as a string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    Many(Vec<String>),
    One(String),
}

impl OneOrMany {
    fn into_items(self) -> Vec<String> {
        match self {
            Self::Many(items) => items,
            Self::One(text) => text
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    kind: Option<String>,
    root: Option<PathBuf>,
    bucket: Option<String>,
    location: Option<String>,
    region: Option<String>,
    endpoint: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    querystring_auth: Option<bool>,
    querystring_expire: Option<u64>,
    encryption: Option<String>,
    kms_key_id: Option<String>,
    file_overwrite: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpload {
    storage: Option<String>,
    upload_to: Option<String>,
    max_file_size: Option<ByteSize>,
    content_types: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    server: Option<String>,
    internal_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    /// Seconds.
    body_idle_timeout: Option<u64>,
    /// Per second, in human units.
    body_min_rate: Option<ByteSize>,
    /// Seconds.
    body_rate_grace: Option<u64>,
    max_connections: Option<usize>,
    max_requests: Option<usize>,
    trusted_proxies: Option<OneOrMany>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccess {
    path_rule: Option<String>,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8000";
pub const DEFAULT_MAX_FILE_SIZE: u64 = 100 * 1024 * 1024;
pub const DEFAULT_STORAGE: &str = "local";
pub const DEFAULT_BODY_IDLE_SECS: u64 = 30;
pub const DEFAULT_BODY_MIN_RATE: u64 = 1024;
pub const DEFAULT_BODY_RATE_GRACE_SECS: u64 = 10;

impl Settings {
    /// Loads from `./private-media.toml` (or `PRIVATE_MEDIA_CONFIG`) and the process environment.
    pub fn load() -> Result<Self, ConfigError> {
        let file = match std::env::var_os("PRIVATE_MEDIA_CONFIG") {
            Some(path) => {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    return Err(ConfigError::new(
                        "PRIVATE_MEDIA_CONFIG",
                        format!("no configuration file at {}", path.display()),
                    ));
                }
                Some(path)
            }
            None => {
                let default = PathBuf::from("private-media.toml");
                default.is_file().then_some(default)
            }
        };
        let mut figment = Figment::new();
        if let Some(file) = &file {
            figment = figment.merge(Toml::file(file));
        }
        for name in sources::service_links_in_environment() {
            tracing::warn!(
                variable = %name,
                "ignoring {name}: Kubernetes sets it for a service named private-media; it is \
                 not configuration (`enableServiceLinks: false` in the pod spec turns these off)"
            );
        }
        let figment = figment
            .merge(sources::NamedEnv::prefixed())
            .merge(sources::NamedEnv::database_url());
        Self::from_figment(figment)
    }

    /// Builds settings from any figment (tests use TOML strings and explicit values).
    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let raw: Raw = figment.extract().map_err(figment_error)?;
        raw.validate().map_err(|e| e.with_source_from(&figment))
    }

    /// Settings for a data dir with every other value at its default.
    pub fn for_data_dir(data_dir: &Path) -> Result<Self, ConfigError> {
        Self::from_figment(Figment::from(figment::providers::Serialized::default(
            "data_dir", data_dir,
        )))
    }

    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.database {
            DatabaseUrl::Sqlite(path) => Some(path),
            DatabaseUrl::Postgres(_) => None,
        }
    }

    /// The session cookie's `Secure` flag: as configured, else on unless bound to loopback
    /// (a plain-http development server could not keep a `Secure` cookie).
    pub fn cookies_secure(&self) -> bool {
        self.secure_cookies
            .unwrap_or_else(|| !self.bind.ip().is_loopback())
    }

    /// Parses a `--bind` value the way the `bind` key is parsed.
    pub fn set_bind(&mut self, value: &str) -> Result<(), ConfigError> {
        self.bind = parse_bind(value)?;
        Ok(())
    }

    pub fn secret_key_path(&self) -> PathBuf {
        self.data_dir.join("secret.key")
    }
}

impl ConfigError {
    /// Adds where the offending value came from (the environment variable, or the file), when
    /// the key held a value; a missing key has no source to name.
    fn with_source_from(mut self, figment: &Figment) -> Self {
        let figment_key = match self.key.as_str() {
            "DATABASE_URL" => "database_url".to_owned(),
            key => key.to_owned(),
        };
        if let Some(metadata) = figment.find_metadata(&figment_key) {
            let path: Vec<String> = figment_key.split('.').map(str::to_owned).collect();
            let source = sources::describe(metadata, figment.profile(), &path);
            self.problem.push_str(&source);
        }
        self
    }
}

fn figment_error(error: figment::Error) -> ConfigError {
    let mut path = error.path.clone();
    if let figment::error::Kind::UnknownField(field, _) = &error.kind
        && path.last() != Some(field)
    {
        path.push(field.clone());
    }
    let source = error
        .metadata
        .as_ref()
        .map(|m| sources::describe(m, &error.profile.clone().unwrap_or_default(), &path))
        .unwrap_or_default();
    let problem = match &error.kind {
        figment::error::Kind::UnknownField(_, _) => "unknown key".to_owned(),
        kind => sources::one_line(&kind.to_string()),
    };
    let key = if path.is_empty() {
        "(top level)".to_owned()
    } else {
        path.join(".")
    };
    ConfigError::new(key, format!("{problem}{source}"))
}

fn parse_bind(value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::new(
            "bind",
            format!("`{value}` is not an address like 127.0.0.1:8000"),
        )
    })
}

impl Raw {
    fn validate(self) -> Result<Settings, ConfigError> {
        let data_dir = self.data_dir.unwrap_or_else(|| PathBuf::from("data"));
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("data_dir", "must not be empty"));
        }
        let database = match self.database_url {
            Some(url) => {
                DatabaseUrl::parse(&url).map_err(|p| ConfigError::new("DATABASE_URL", p))?
            }
            None => DatabaseUrl::Sqlite(data_dir.join("private-media.sqlite3")),
        };
        let bind_text = self.bind.unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let bind = parse_bind(&bind_text)?;
        let secret_key = self
            .secret_key
            .map(SecretKey::parse)
            .transpose()
            .map_err(|p| ConfigError::new("secret_key", p))?;
        let secure_cookies = self.secure_cookies;

        let mut storages = BTreeMap::new();
        let mut raw_storages = self.storages;
        if !raw_storages.contains_key(DEFAULT_STORAGE) {
            raw_storages.insert(DEFAULT_STORAGE.to_owned(), RawStorage::default());
        }
        for (name, raw) in raw_storages {
            let storage = raw.validate(&name, &data_dir)?;
            storages.insert(name, storage);
        }

        let upload = self.upload.validate(&storages)?;
        let delivery = self.delivery.validate()?;
        let access = self.access.validate()?;
        let server = self.server.validate()?;
        Ok(Settings {
            data_dir,
            database,
            bind,
            secret_key,
            secure_cookies,
            storages,
            upload,
            delivery,
            access,
            server,
        })
    }
}

impl RawServer {
    fn validate(self) -> Result<ServerSettings, ConfigError> {
        let entries = self
            .trusted_proxies
            .map(OneOrMany::into_items)
            .unwrap_or_default();
        let trusted_proxies = TrustedProxies::parse(&entries)
            .map_err(|p| ConfigError::new("server.trusted_proxies", p))?;
        let seconds = |value: Option<u64>, default: u64, key: &str| match value.unwrap_or(default) {
            0 => Err(ConfigError::new(key, "must be at least 1 second")),
            n => Ok(Duration::from_secs(n)),
        };
        let at_least_one = |value: Option<usize>, key: &str| match value {
            Some(0) => Err(ConfigError::new(key, "must be at least 1")),
            other => Ok(other),
        };
        Ok(ServerSettings {
            body_idle_timeout: seconds(
                self.body_idle_timeout,
                DEFAULT_BODY_IDLE_SECS,
                "server.body_idle_timeout",
            )?,
            body_min_rate: self
                .body_min_rate
                .map_or(DEFAULT_BODY_MIN_RATE, |rate| rate.as_u64()),
            body_rate_grace: seconds(
                self.body_rate_grace,
                DEFAULT_BODY_RATE_GRACE_SECS,
                "server.body_rate_grace",
            )?,
            max_connections: at_least_one(self.max_connections, "server.max_connections")?,
            max_requests: at_least_one(self.max_requests, "server.max_requests")?,
            trusted_proxies,
        })
    }
}

impl RawStorage {
    fn validate(self, name: &str, data_dir: &Path) -> Result<StorageSettings, ConfigError> {
        let key = |field: &str| format!("storages.{name}.{field}");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(ConfigError::new(
                format!("storages.{name}"),
                "a storage name uses only letters, digits, `_` and `-`",
            ));
        }
        let kind = match (self.kind.as_deref(), name) {
            (Some(kind), _) => kind.to_owned(),
            (None, DEFAULT_STORAGE) => "filesystem".to_owned(),
            (None, _) => {
                return Err(ConfigError::new(
                    key("kind"),
                    "missing: `filesystem` or `s3`",
                ));
            }
        };
        match kind.as_str() {
            "filesystem" => {
                let s3_only = [
                    ("bucket", self.bucket.is_some()),
                    ("location", self.location.is_some()),
                    ("region", self.region.is_some()),
                    ("endpoint", self.endpoint.is_some()),
                    ("access_key_id", self.access_key_id.is_some()),
                    ("secret_access_key", self.secret_access_key.is_some()),
                    ("querystring_auth", self.querystring_auth.is_some()),
                    ("querystring_expire", self.querystring_expire.is_some()),
                    ("encryption", self.encryption.is_some()),
                    ("kms_key_id", self.kms_key_id.is_some()),
                ];
                if let Some((field, _)) = s3_only.iter().find(|(_, set)| *set) {
                    return Err(ConfigError::new(
                        key(field),
                        "only applies to `kind = \"s3\"` storages",
                    ));
                }
                let root = match (self.root, name) {
                    (Some(root), _) if root.as_os_str().is_empty() => {
                        return Err(ConfigError::new(key("root"), "must not be empty"));
                    }
                    (Some(root), _) => root,
                    (None, DEFAULT_STORAGE) => data_dir.join("private"),
                    (None, _) => {
                        return Err(ConfigError::new(
                            key("root"),
                            "missing: a filesystem storage needs a root folder",
                        ));
                    }
                };
                Ok(StorageSettings::Filesystem { root })
            }
            "s3" => {
                if self.root.is_some() {
                    return Err(ConfigError::new(
                        key("root"),
                        "only applies to `kind = \"filesystem\"` storages",
                    ));
                }
                let bucket = match self.bucket {
                    Some(b) if !b.trim().is_empty() => b,
                    _ => return Err(ConfigError::new(key("bucket"), "missing: the bucket name")),
                };
                let encryption = match (self.encryption.as_deref(), self.kms_key_id) {
                    (None, None) => None,
                    (None, Some(_)) => {
                        return Err(ConfigError::new(
                            key("kms_key_id"),
                            "only applies with `encryption = \"aws:kms\"`",
                        ));
                    }
                    (Some("AES256"), None) => Some(S3Encryption::Aes256),
                    (Some("AES256"), Some(_)) => {
                        return Err(ConfigError::new(
                            key("kms_key_id"),
                            "only applies with `encryption = \"aws:kms\"`",
                        ));
                    }
                    (Some("aws:kms"), Some(key_id)) if !key_id.is_empty() => {
                        Some(S3Encryption::Kms { key_id })
                    }
                    (Some("aws:kms"), _) => {
                        return Err(ConfigError::new(
                            key("kms_key_id"),
                            "missing: `aws:kms` encryption needs a key id",
                        ));
                    }
                    (Some(other), _) => {
                        return Err(ConfigError::new(
                            key("encryption"),
                            format!("`{other}` is not one of `AES256`, `aws:kms`"),
                        ));
                    }
                };
                let querystring_expire = self.querystring_expire.unwrap_or(300);
                if querystring_expire == 0 || querystring_expire > 7 * 24 * 3600 {
                    return Err(ConfigError::new(
                        key("querystring_expire"),
                        "must be between 1 and 604800 seconds (7 days, the S3 maximum)",
                    ));
                }
                let location = self
                    .location
                    .unwrap_or_default()
                    .trim_matches('/')
                    .to_owned();
                // Every file keeps its own object: a row never shares its key with another,
                // so an upload never replaces another file's bytes.
                if self.file_overwrite == Some(true) {
                    return Err(ConfigError::new(
                        key("file_overwrite"),
                        "`true` is not supported: every upload gets its own key \
                         (a taken key gets a fresh unique name)",
                    ));
                }
                Ok(StorageSettings::S3(S3Settings {
                    bucket,
                    location,
                    region: self.region.unwrap_or_else(|| "us-east-1".to_owned()),
                    endpoint: self.endpoint,
                    access_key_id: self.access_key_id,
                    secret_access_key: self.secret_access_key,
                    querystring_auth: self.querystring_auth.unwrap_or(true),
                    querystring_expire,
                    encryption,
                    file_overwrite: self.file_overwrite.unwrap_or(false),
                }))
            }
            other => Err(ConfigError::new(
                key("kind"),
                format!("`{other}` is not one of `filesystem`, `s3`"),
            )),
        }
    }
}

impl RawUpload {
    fn validate(
        self,
        storages: &BTreeMap<String, StorageSettings>,
    ) -> Result<UploadSettings, ConfigError> {
        let storage = self.storage.unwrap_or_else(|| DEFAULT_STORAGE.to_owned());
        if !storages.contains_key(&storage) {
            let known: Vec<&str> = storages.keys().map(String::as_str).collect();
            return Err(ConfigError::new(
                "upload.storage",
                format!(
                    "no storage named `{storage}` (configured: {})",
                    known.join(", ")
                ),
            ));
        }
        let upload_to = self.upload_to.unwrap_or_else(|| "%Y/%m/%d".to_owned());
        validate_upload_to(&upload_to).map_err(|p| ConfigError::new("upload.upload_to", p))?;
        let max_file_size = self
            .max_file_size
            .map(|b| b.as_u64())
            .unwrap_or(DEFAULT_MAX_FILE_SIZE);
        if max_file_size == 0 {
            return Err(ConfigError::new(
                "upload.max_file_size",
                "must be larger than 0",
            ));
        }
        // An S3 upload is finished with one server-side copy to its key, which S3 allows up
        // to 5 GiB.
        if matches!(storages.get(&storage), Some(StorageSettings::S3(_)))
            && max_file_size > S3_MAX_COPY
        {
            return Err(ConfigError::new(
                "upload.max_file_size",
                format!("at most 5GiB when uploads go to the S3 storage `{storage}`"),
            ));
        }
        let content_types = self
            .content_types
            .unwrap_or_default()
            .iter()
            .map(|t| ContentTypePattern::parse(t))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|p| ConfigError::new("upload.content_types", p))?;
        Ok(UploadSettings {
            storage,
            upload_to,
            max_file_size,
            content_types,
        })
    }
}

/// `upload_to` may use `%Y`, `%m`, `%d` and `{user}` between plain folder names.
fn validate_upload_to(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(i) = rest.find('%') {
        match rest[i + 1..].chars().next() {
            Some('Y' | 'm' | 'd') => rest = &rest[i + 2..],
            _ => return Err("only `%Y`, `%m` and `%d` may follow `%`".into()),
        }
    }
    let without_user = template.replace("{user}", "");
    if without_user.contains(['{', '}']) {
        return Err("the only placeholder in braces is `{user}`".into());
    }
    if template.starts_with('/') || template.contains('\\') {
        return Err("must be a relative folder using `/`".into());
    }
    if template.split('/').any(|seg| seg == ".." || seg == ".") {
        return Err("must not contain `.` or `..` segments".into());
    }
    if template.chars().any(|c| c.is_control()) {
        return Err("must not contain control characters".into());
    }
    Ok(())
}

impl RawDelivery {
    fn validate(self) -> Result<DeliverySettings, ConfigError> {
        let server = match self.server.as_deref().unwrap_or("app") {
            "app" => DeliveryServer::App,
            "nginx" => DeliveryServer::Nginx,
            "apache" => DeliveryServer::Apache,
            other => {
                return Err(ConfigError::new(
                    "delivery.server",
                    format!("`{other}` is not one of `app`, `nginx`, `apache`"),
                ));
            }
        };
        let internal_url = self
            .internal_url
            .unwrap_or_else(|| "/private-x-accel-redirect/".to_owned());
        if !internal_url.starts_with('/') || !internal_url.ends_with('/') {
            return Err(ConfigError::new(
                "delivery.internal_url",
                "must start and end with `/`, e.g. `/private-x-accel-redirect/`",
            ));
        }
        Ok(DeliverySettings {
            server,
            internal_url,
        })
    }
}

impl RawAccess {
    fn validate(self) -> Result<AccessSettings, ConfigError> {
        let path_rule = match self.path_rule.as_deref().unwrap_or("superuser") {
            "superuser" => PathRule::Superuser,
            "staff" => PathRule::Staff,
            "authenticated" => PathRule::Authenticated,
            other => {
                return Err(ConfigError::new(
                    "access.path_rule",
                    format!("`{other}` is not one of `superuser`, `staff`, `authenticated`"),
                ));
            }
        };
        Ok(AccessSettings { path_rule })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Toml;

    fn from_toml(toml: &str) -> Result<Settings, ConfigError> {
        Settings::from_figment(Figment::from(Toml::string(toml)))
    }

    #[test]
    fn empty_config_gives_the_embedded_default() {
        let s = from_toml("").expect("defaults are valid");
        assert_eq!(s.data_dir, PathBuf::from("data"));
        assert_eq!(
            s.database,
            DatabaseUrl::Sqlite(PathBuf::from("data/private-media.sqlite3"))
        );
        assert_eq!(s.bind.to_string(), DEFAULT_BIND);
        assert!(
            !s.cookies_secure(),
            "loopback bind defaults to insecure cookies"
        );
        assert_eq!(
            s.storages.get("local"),
            Some(&StorageSettings::Filesystem {
                root: PathBuf::from("data/private")
            })
        );
        assert_eq!(s.upload.max_file_size, DEFAULT_MAX_FILE_SIZE);
        assert_eq!(s.delivery.server, DeliveryServer::App);
        assert_eq!(s.access.path_rule, PathRule::Superuser);
        assert_eq!(s.server.body_idle_timeout, Duration::from_secs(30));
        assert_eq!(s.server.body_min_rate, 1024);
        assert_eq!(s.server.max_connections, None);
    }

    #[test]
    fn server_limits_are_read_and_checked() {
        let s = from_toml(
            "[server]\nbody_idle_timeout = 5\nbody_min_rate = \"4KiB\"\nmax_connections = 100\nmax_requests = 80",
        )
        .unwrap();
        assert_eq!(s.server.body_idle_timeout, Duration::from_secs(5));
        assert_eq!(s.server.body_min_rate, 4096);
        assert_eq!(s.server.max_connections, Some(100));
        assert_eq!(s.server.max_requests, Some(80));
        for (toml, key) in [
            (
                "[server]\nbody_idle_timeout = 0",
                "server.body_idle_timeout",
            ),
            ("[server]\nmax_connections = 0", "server.max_connections"),
        ] {
            assert_eq!(from_toml(toml).unwrap_err().key, key, "{toml}");
        }
    }

    #[test]
    fn a_public_bind_turns_secure_cookies_on() {
        let s = from_toml("bind = \"0.0.0.0:8000\"").unwrap();
        assert!(s.cookies_secure());
        let s = from_toml("bind = \"0.0.0.0:8000\"\nsecure_cookies = false").unwrap();
        assert!(!s.cookies_secure());
    }

    #[test]
    fn sizes_accept_human_units() {
        let s = from_toml("[upload]\nmax_file_size = \"1MiB\"").unwrap();
        assert_eq!(s.upload.max_file_size, 1024 * 1024);
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

    #[test]
    fn s3_storages_take_their_defaults() {
        let s = from_toml("[storages.media]\nkind = \"s3\"\nbucket = \"b\"\nlocation = \"/x/\"")
            .unwrap();
        let Some(StorageSettings::S3(s3)) = s.storages.get("media") else {
            panic!("not s3");
        };
        assert!(s3.querystring_auth);
        assert_eq!(s3.querystring_expire, 300);
        assert_eq!(s3.location, "x");
        assert!(!s3.file_overwrite);
    }

    #[test]
    fn trusted_proxies_take_a_list_or_one_comma_separated_string() {
        let s = from_toml("[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]").unwrap();
        assert_eq!(
            s.server.trusted_proxies.to_string(),
            "127.0.0.1/32, 10.0.0.0/8"
        );
        let s = from_toml("[server]\ntrusted_proxies = \"127.0.0.1, ::1\"").unwrap();
        assert_eq!(
            s.server.trusted_proxies.to_string(),
            "127.0.0.1/32, ::1/128"
        );
        assert!(from_toml("").unwrap().server.trusted_proxies.is_empty());
    }

    #[test]
    fn database_urls_are_shown_without_their_password() {
        let shown = |url: &str| DatabaseUrl::parse(url).unwrap().redacted();
        assert_eq!(
            shown("postgres://media:s3cret@db:5432/media?sslmode=require"),
            "postgres://media:***@db:5432/media?sslmode=require"
        );
        assert_eq!(
            shown("postgresql://db/media?user=m&password=s3cret"),
            "postgresql://db/media?user=m&password=***"
        );
        assert_eq!(
            shown("postgres://media@db/media"),
            "postgres://media@db/media"
        );
        assert_eq!(shown("postgres://a:b:c@db"), "postgres://a:***@db");
        assert_eq!(shown("sqlite://data/x.sqlite3"), "sqlite://data/x.sqlite3");
    }

    #[test]
    fn content_type_patterns_match_by_essence() {
        let image = ContentTypePattern::parse("image/*").unwrap();
        assert!(image.matches("image/png"));
        assert!(!image.matches("text/html"));
        let pdf = ContentTypePattern::parse("application/PDF").unwrap();
        assert!(pdf.matches("application/pdf"));
        assert!(ContentTypePattern::parse("*/*").unwrap().matches("x/y"));
    }
}
