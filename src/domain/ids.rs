//! The ids of users and files: 128 random bits as 32 lower-case hex characters, one newtype
//! each, so a user's id can never be handed to something that wants a file's.

/// Text that is not an id of the kind asked for.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error("not a valid {0}: expected 32 lower-case hex characters")]
pub struct InvalidId(&'static str);

fn is_id(value: &str) -> bool {
    value.len() == 32
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

macro_rules! hex_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// A fresh id from the OS-seeded CSPRNG, never a sequence.
            pub fn generate() -> Self {
                Self(hex::encode(rand::random::<[u8; 16]>()))
            }

            /// Accepts exactly the shape `generate` makes.
            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                if is_id(value) {
                    Ok(Self(value.to_owned()))
                } else {
                    Err(InvalidId($what))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(&self.0)
            }
        }
    };
}

hex_id!(
    /// A user's id, as the `users.id` column, session cookies and `/admin/users/{id}` hold it.
    UserId,
    "user id"
);

hex_id!(
    /// A file's id, as the `files.id` column and `/files/{id}/…` URLs hold it.
    FileId,
    "file id"
);

hex_id!(
    /// A share link's id, as the `share_links.id` column and `/admin/links/{id}/…` URLs hold
    /// it. Not its token: the id names a link to staff, only the token opens it.
    LinkId,
    "link id"
);

hex_id!(
    /// An API token's id, as the `api_tokens.id` column, `token revoke` and
    /// `/account/tokens/{id}/revoke` hold it. Not the token: the id names it, only the token
    /// opens the API.
    TokenId,
    "token id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = FileId::generate();
        assert_eq!(a.as_str().len(), 32);
        assert_ne!(a, FileId::generate());
        assert_eq!(FileId::parse(a.as_str()), Ok(a.clone()));
        let u = UserId::generate();
        assert_eq!(UserId::parse(u.as_str()), Ok(u.clone()));
        assert_ne!(u.as_str(), UserId::generate().as_str());
    }

    #[test]
    fn only_32_lower_case_hex_characters_are_ids() {
        let good = "0123456789abcdef0123456789abcdef";
        assert!(FileId::parse(good).is_ok());
        assert!(UserId::parse(good).is_ok());
        for bad in [
            "",
            "..",
            "ABCDEF0123456789abcdef0123456789",
            &good[..31],
            &format!("{good}0"),
            "g".repeat(32).as_str(),
            "0123456789abcdef0123456789abcde/",
        ] {
            assert_eq!(FileId::parse(bad), Err(InvalidId("file id")), "{bad}");
            assert_eq!(UserId::parse(bad), Err(InvalidId("user id")), "{bad}");
        }
    }

    #[test]
    fn ids_show_as_their_text() {
        let id = UserId::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(id.to_string(), id.as_str());
        assert_eq!(format!("{id:>34}"), format!("  {}", id.as_str()));
    }
}
