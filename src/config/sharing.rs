//! `[sharing]`: share links (README: "Share links").

use super::ConfigError;
use super::raw::RawSharing;
use crate::domain::LinkLifetime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharingSettings {
    /// The longest a link may last; the form refuses more.
    pub max_expiry: LinkLifetime,
}

impl RawSharing {
    pub(super) fn validate(self) -> Result<SharingSettings, ConfigError> {
        let max_expiry = match self.max_expiry {
            None => LinkLifetime::days(90),
            Some(text) => LinkLifetime::parse(&text.into_text())
                .map_err(|e| ConfigError::new("sharing.max_expiry", e.to_string()))?,
        };
        Ok(SharingSettings { max_expiry })
    }
}
