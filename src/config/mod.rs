//! Settings: built-in defaults, then an optional TOML file, then the environment (README:
//! "Configuration").
//!
//! Loading happens in two steps. `figment` merges the sources into a `Raw` tree whose fields
//! are all optional, so a typo or a wrong type is reported with the key that carries it. Then
//! `Raw::validate` turns that tree into `Settings`, whose fields can only hold usable values.
//! Nothing here is global: the CLI loads one `Settings` and passes it down, tests build their own.
//!
//! `raw.rs` holds the tree as read; each section's settings and their validation live in a file
//! of their own (`database.rs`, `storages.rs`, `upload.rs`, `delivery.rs`, `server.rs`), and
//! `sources.rs` says where a bad value came from.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Toml};
use secrecy::{ExposeSecret, SecretString};

mod database;
mod delivery;
mod raw;
mod server;
mod sharing;
mod sources;
mod storages;
mod thumbnails;
mod upload;

pub use database::DatabaseUrl;
pub use delivery::{AccessSettings, DeliveryServer, DeliverySettings, PathRule};
use raw::{Raw, RawStorage};
pub use server::{
    DEFAULT_BODY_IDLE_SECS, DEFAULT_BODY_MIN_RATE, DEFAULT_BODY_RATE_GRACE_SECS, ServerSettings,
};
pub use sharing::{AuditSettings, SharingSettings};
pub use storages::{DEFAULT_STORAGE, S3Encryption, S3Settings, StorageSettings};
pub use thumbnails::ThumbnailSettings;
pub use upload::{ContentTypePattern, DEFAULT_MAX_FILE_SIZE, UploadSettings};

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
    pub sharing: SharingSettings,
    pub audit: AuditSettings,
    pub thumbnails: ThumbnailSettings,
}

/// Key material for session cookies and signed links: at least 64 characters. Kept as a
/// `SecretString`, so its `Debug` shows no key; `expose_secret` is for building the cookie key.
#[derive(Clone, Debug)]
pub struct SecretKey(SecretString);

impl SecretKey {
    pub const MIN_LEN: usize = 64;

    pub fn parse(value: impl Into<SecretString>) -> Result<Self, String> {
        let value = value.into();
        let len = value.expose_secret().chars().count();
        if len < Self::MIN_LEN {
            return Err(format!(
                "must be at least {} characters long (got {len})",
                Self::MIN_LEN
            ));
        }
        Ok(Self(value))
    }
}

impl ExposeSecret<str> for SecretKey {
    fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

pub const DEFAULT_BIND: &str = "127.0.0.1:8000";

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
        // serde's message quotes the value it found: not for a secret.
        kind if raw::is_secret(&path) => match kind {
            figment::error::Kind::InvalidType(_, expected)
            | figment::error::Kind::InvalidValue(_, expected) => {
                format!("invalid value (not shown: it is a secret), expected {expected}")
            }
            _ => "invalid value (not shown: it is a secret)".to_owned(),
        },
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
            Some(url) => DatabaseUrl::parse(url.expose_secret())
                .map_err(|p| ConfigError::new("DATABASE_URL", p))?,
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
        let sharing = self.sharing.validate()?;
        let audit = self.audit.validate()?;
        let thumbnails = self.thumbnails.validate()?;
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
            sharing,
            audit,
            thumbnails,
        })
    }
}

#[cfg(test)]
fn from_toml(toml: &str) -> Result<Settings, ConfigError> {
    Settings::from_figment(Figment::from(Toml::string(toml)))
}

#[cfg(test)]
mod tests;
