//! `[storages.NAME]`: filesystem and S3 storages, and their validation.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::ConfigError;
use super::raw::RawStorage;

pub const DEFAULT_STORAGE: &str = "local";
/// The largest object S3 copies in one request.
pub(super) const S3_MAX_COPY: u64 = 5 * 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub enum StorageSettings {
    Filesystem { root: PathBuf },
    S3(S3Settings),
}

/// `Debug` shows no secret: `secret_access_key` is a `SecretString`, exposed only to build the
/// S3 client's credentials.
#[derive(Debug, Clone)]
pub struct S3Settings {
    pub bucket: String,
    pub location: String,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<SecretString>,
    pub querystring_auth: bool,
    pub querystring_expire: u64,
    pub encryption: Option<S3Encryption>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Encryption {
    Aes256,
    Kms { key_id: String },
}

impl RawStorage {
    pub(super) fn validate(
        self,
        name: &str,
        data_dir: &Path,
    ) -> Result<StorageSettings, ConfigError> {
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
                }))
            }
            other => Err(ConfigError::new(
                key("kind"),
                format!("`{other}` is not one of `filesystem`, `s3`"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml;

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
    }
}
