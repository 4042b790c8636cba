//! The secret key: from the configuration, or generated once and kept in `DATA_DIR/secret.key`
//! (mode 0600) so sessions survive restarts.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use crate::config::{SecretKey, Settings};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read or create the secret key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("the secret key file {path} is invalid: {problem}")]
    Invalid { path: String, problem: String },
}

pub fn load_or_create(settings: &Settings) -> Result<SecretKey, SecretError> {
    if let Some(key) = &settings.secret_key {
        return Ok(key.clone());
    }
    let path = settings.secret_key_path();
    let shown = path.display().to_string();
    let io = |source| SecretError::Io {
        path: shown.clone(),
        source,
    };
    if !path.exists() {
        // Written whole to a temp file (0600) and moved in without overwriting: when two
        // processes start at once, one key wins and both read that one, never a partial file.
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        let key = format!(
            "{}{}",
            crate::ids::random_token(),
            crate::ids::random_token()
        );
        file.write_all(key.as_bytes()).map_err(io)?;
        file.as_file().sync_all().map_err(io)?;
        match file.persist_noclobber(&path) {
            Ok(_) => {}
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e.error)),
        }
    }
    let mode = std::fs::metadata(&path).map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(path = %shown, "the secret key file is readable by others; chmod 600 it");
    }
    let text = std::fs::read_to_string(&path).map_err(io)?;
    SecretKey::parse(text.trim().to_owned()).map_err(|problem| SecretError::Invalid {
        path: shown.clone(),
        problem,
    })
}
