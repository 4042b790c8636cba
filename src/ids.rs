//! Random identifiers and tokens: 128 bits or more from the OS-seeded CSPRNG, never a sequence.
//! The typed ids of users and files are `domain::UserId` and `domain::FileId`.

use base64::Engine;

/// 128 random bits as 32 lower-case hex characters: ids of rows without a type of their own,
/// storage instances and temp names.
pub fn random_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// 256 random bits, URL-safe base64 without padding: CSRF tokens and generated secrets.
pub fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::FileId;

    #[test]
    fn ids_are_long_and_distinct() {
        let a = random_id();
        assert_eq!(a.len(), 32);
        assert_ne!(a, random_id());
        assert_eq!(random_token().len(), 43);
        assert!(FileId::parse(&a).is_ok());
        for bad in [
            "",
            "..",
            "ABCDEF0123456789abcdef0123456789",
            &a[..31],
            "g".repeat(32).as_str(),
        ] {
            assert!(FileId::parse(bad).is_err(), "{bad}");
        }
    }
}
