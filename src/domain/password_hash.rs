//! A password hash as the database keeps it. Made only by `auth::password`, the one place
//! that hashes; everything else only carries it to the row.

/// A PHC-format argon2id hash, as stored in the database.
#[derive(Debug, Clone)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps the PHC string a hasher produced (not for text from anywhere else).
    pub(crate) fn from_phc(phc: String) -> Self {
        Self(phc)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}
