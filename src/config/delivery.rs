//! `[delivery]` (how a download leaves: the app, nginx or Apache) and `[access]` (who may use
//! the path view).

use super::ConfigError;
use super::raw::{RawAccess, RawDelivery};

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

impl RawDelivery {
    pub(super) fn validate(self) -> Result<DeliverySettings, ConfigError> {
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
    pub(super) fn validate(self) -> Result<AccessSettings, ConfigError> {
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
