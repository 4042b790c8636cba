//! `[upload]`: where uploads go, how large they may be, which content types are accepted.

use std::collections::BTreeMap;

use super::ConfigError;
use super::raw::RawUpload;
use super::storages::{DEFAULT_STORAGE, S3_MAX_COPY, StorageSettings};

pub const DEFAULT_MAX_FILE_SIZE: u64 = 100 * 1024 * 1024;

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

impl RawUpload {
    pub(super) fn validate(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::from_toml;

    #[test]
    fn sizes_accept_human_units() {
        let s = from_toml("[upload]\nmax_file_size = \"1MiB\"").unwrap();
        assert_eq!(s.upload.max_file_size, 1024 * 1024);
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
