//! Random identifiers and tokens: 128 bits or more from the OS-seeded CSPRNG, never a sequence.

use base64::Engine;

/// 128 random bits as 32 lower-case hex characters: ids of users and files.
pub fn random_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// 256 random bits, URL-safe base64 without padding: CSRF tokens and generated secrets.
pub fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// A file's id as it arrives in a URL: 32 lower-case hex characters, or not an id at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileId(String);

impl FileId {
    pub fn parse(value: &str) -> Option<Self> {
        (value.len() == 32
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then(|| Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_long_and_distinct() {
        let a = random_id();
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_id());
        assert_eq!(random_token().len(), 43);
        assert!(FileId::parse(&a).is_some());
        for bad in [
            "",
            "..",
            "ABCDEF0123456789abcdef0123456789",
            &a[..31],
            "g".repeat(32).as_str(),
        ] {
            assert!(FileId::parse(bad).is_none(), "{bad}");
        }
    }
}
