//! The raw, all-optional tree that figment fills: every key the configuration accepts, with
//! the type it is read as. Each section's `validate` (beside its settings) makes it usable.
//! Secrets are read straight into `SecretString`s, so not even this tree's `Debug` shows them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytesize::ByteSize;
use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Raw {
    pub(super) data_dir: Option<PathBuf>,
    pub(super) database_url: Option<SecretString>,
    pub(super) bind: Option<String>,
    pub(super) secret_key: Option<SecretString>,
    pub(super) secure_cookies: Option<bool>,
    #[serde(default)]
    pub(super) storages: BTreeMap<String, RawStorage>,
    #[serde(default)]
    pub(super) upload: RawUpload,
    #[serde(default)]
    pub(super) delivery: RawDelivery,
    #[serde(default)]
    pub(super) access: RawAccess,
    #[serde(default)]
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) sharing: RawSharing,
    #[serde(default)]
    pub(super) audit: RawAudit,
    #[serde(default)]
    pub(super) thumbnails: RawThumbnails,
}

/// Whether the key at `path` holds a secret (`SecretString` above), whose value an error
/// must not quote.
pub(super) fn is_secret(path: &[String]) -> bool {
    match path {
        [key] => key == "secret_key" || key == "database_url",
        [section, _, key] => section == "storages" && key == "secret_access_key",
        _ => false,
    }
}

/// A list from TOML (`["10.0.0.1", "10.0.0.0/8"]`) or the environment, where figment reads
/// `[10.0.0.1, 10.0.0.0/8]` as a list but a lone `10.0.0.1` or `10.0.0.1,10.0.0.2` as a string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    Many(Vec<String>),
    One(String),
}

impl OneOrMany {
    pub(super) fn into_items(self) -> Vec<String> {
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
pub(super) struct RawStorage {
    pub(super) kind: Option<String>,
    pub(super) root: Option<PathBuf>,
    pub(super) bucket: Option<String>,
    pub(super) location: Option<String>,
    pub(super) region: Option<String>,
    pub(super) endpoint: Option<String>,
    pub(super) access_key_id: Option<String>,
    pub(super) secret_access_key: Option<SecretString>,
    pub(super) querystring_auth: Option<bool>,
    pub(super) querystring_expire: Option<u64>,
    pub(super) encryption: Option<String>,
    pub(super) kms_key_id: Option<String>,
    pub(super) file_overwrite: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpload {
    pub(super) storage: Option<String>,
    pub(super) upload_to: Option<String>,
    pub(super) max_file_size: Option<ByteSize>,
    pub(super) content_types: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDelivery {
    pub(super) server: Option<String>,
    pub(super) internal_url: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    /// Seconds.
    pub(super) body_idle_timeout: Option<u64>,
    /// Per second, in human units.
    pub(super) body_min_rate: Option<ByteSize>,
    /// Seconds.
    pub(super) body_rate_grace: Option<u64>,
    pub(super) max_connections: Option<usize>,
    pub(super) max_requests: Option<usize>,
    pub(super) trusted_proxies: Option<OneOrMany>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccess {
    pub(super) path_rule: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSharing {
    pub(super) max_expiry: Option<TextOrNumber>,
}

/// A value written as text (`"90d"`) or, from TOML or the environment, as a bare number of
/// hours (`72`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum TextOrNumber {
    Number(u64),
    Text(String),
}

impl TextOrNumber {
    pub(super) fn into_text(self) -> String {
        match self {
            Self::Number(n) => n.to_string(),
            Self::Text(text) => text,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudit {
    pub(super) enabled: Option<bool>,
    pub(super) retention_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawThumbnails {
    pub(super) enabled: Option<bool>,
    pub(super) max_pixels: Option<u64>,
}
