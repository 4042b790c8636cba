//! `[sharing]`: share links (README: "Share links"), and `[audit]`: how long the audit log
//! keeps events (README: "Audit log").

use super::ConfigError;
use super::raw::{RawAudit, RawSharing};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSettings {
    /// `false`: nothing is recorded (the events already written stay readable).
    pub enabled: bool,
    /// Days events are kept; `None`: for ever (`retention_days = 0`).
    pub retention_days: Option<u32>,
}

impl RawAudit {
    pub(super) fn validate(self) -> Result<AuditSettings, ConfigError> {
        let days = self.retention_days.unwrap_or(365);
        if days > 36_600 {
            return Err(ConfigError::new(
                "audit.retention_days",
                "at most 36600 (a hundred years); 0 keeps events for ever",
            ));
        }
        Ok(AuditSettings {
            enabled: self.enabled.unwrap_or(true),
            retention_days: (days > 0).then_some(days),
        })
    }
}
