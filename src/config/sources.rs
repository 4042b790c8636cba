//! Where configuration comes from, told precisely enough that an error can point at it: the
//! environment variable that holds a bad value, or the file and the line of a syntax error.

use figment::providers::Env;
use figment::value::{Dict, Map};
use figment::{Error, Metadata, Profile, Provider};

pub const ENV_PREFIX: &str = "PRIVATE_MEDIA_";
/// The name every environment source's metadata carries, so errors can recognise them.
const ENV_SOURCE: &str = "environment variable";

/// Environment variables that share the `PRIVATE_MEDIA_` prefix but are not configuration keys.
const NON_CONFIG_VARS: &[&str] = &[
    "config",
    "admin_password",
    "log",
    "move_stall",
    "upload_stall",
];

/// An environment provider whose metadata names the variable behind each key.
pub struct NamedEnv {
    env: Env,
    /// Turns a key path (`["upload", "max_file_size"]`) into its variable's name.
    name_of: fn(&[&str]) -> String,
}

impl NamedEnv {
    /// `PRIVATE_MEDIA_<KEY>` and `PRIVATE_MEDIA_<SECTION>__<KEY>`, less the variables that
    /// are not configuration and those Kubernetes sets for a service (see `is_service_link`).
    pub fn prefixed() -> Self {
        Self {
            env: Env::prefixed(ENV_PREFIX)
                .split("__")
                .ignore(NON_CONFIG_VARS)
                .filter(|key| !is_service_link(key.as_str())),
            name_of: |keys| format!("{ENV_PREFIX}{}", keys.join("__").to_ascii_uppercase()),
        }
    }

    /// The unprefixed `DATABASE_URL` every tool around databases reads.
    pub fn database_url() -> Self {
        Self {
            env: Env::raw().only(&["database_url"]),
            name_of: |_| "DATABASE_URL".to_owned(),
        }
    }
}

impl Provider for NamedEnv {
    fn metadata(&self) -> Metadata {
        let name_of = self.name_of;
        Metadata::named(ENV_SOURCE).interpolater(move |_: &Profile, keys: &[&str]| name_of(keys))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, Error> {
        self.env.data()
    }
}

/// Kubernetes gives every pod `<SERVICE>_SERVICE_HOST`, `<SERVICE>_SERVICE_PORT…` and
/// `<SERVICE>_PORT…` for each service in its namespace; a service named `private-media` makes
/// them look like ours. None of them is a configuration key (`key` is the part after the
/// prefix, lower case).
pub fn is_service_link(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key == "port" || key.starts_with("port_") || key.starts_with("service_")
}

/// The service-link variables present now, to warn about once at start.
pub fn service_links_in_environment() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| {
            name.strip_prefix(ENV_PREFIX)
                .is_some_and(|rest| !rest.contains("__") && is_service_link(rest))
        })
        .collect()
}

/// " (from …)" for a value that came from `metadata` at `path`.
pub fn describe(metadata: &Metadata, profile: &Profile, path: &[String]) -> String {
    if metadata.name == ENV_SOURCE && !path.is_empty() {
        let name = metadata.interpolate(profile, path);
        // An unknown section (`PRIVATE_MEDIA_UPLOADS__STORAGE`) is reported by its first part.
        let nested = format!("{name}__");
        let shown = if std::env::var_os(&name).is_some() {
            name
        } else {
            std::env::vars_os()
                .filter_map(|(var, _)| var.into_string().ok())
                .find(|var| var.starts_with(&nested))
                .unwrap_or(name)
        };
        return format!(" (from the environment variable {shown})");
    }
    match &metadata.source {
        Some(source) => format!(" (from {source})"),
        None => format!(" (from {})", metadata.name),
    }
}

/// A parser's message on one line: TOML errors come as a header with the line and column, a
/// drawing of the line, and the problem; the header and the problem are kept.
pub fn one_line(message: &str) -> String {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let Some(first) = lines.next() else {
        return String::new();
    };
    // The drawing is `  |`, `1 | bind = …` and `  |      ^` lines.
    let is_drawing = |line: &str| {
        line.starts_with('|')
            || line
                .split_once('|')
                .is_some_and(|(before, _)| before.trim().chars().all(|c| c.is_ascii_digit()))
    };
    let rest: Vec<&str> = lines.filter(|l| !is_drawing(l)).collect();
    if rest.is_empty() {
        first.to_owned()
    } else {
        format!("{first}: {}", rest.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_service_links_are_recognised_and_keys_are_not() {
        for link in [
            "port",
            "PORT_8000_TCP",
            "port_8000_tcp_addr",
            "service_host",
            "service_port_http",
        ] {
            assert!(is_service_link(link), "{link}");
        }
        for key in ["bind", "data_dir", "secure_cookies", "upload", "portal"] {
            assert!(!is_service_link(key), "{key}");
        }
    }

    #[test]
    fn a_toml_error_becomes_one_line_with_its_position() {
        let message = "TOML parse error at line 1, column 23\n  |\n1 | bind = \"127.0.0.1:8000\n  |                       ^\ninvalid basic string\n";
        assert_eq!(
            one_line(message),
            "TOML parse error at line 1, column 23: invalid basic string"
        );
        assert_eq!(one_line("plain"), "plain");
    }
}
