//! Usernames, parsed where they come in (a form, the command line, a database row).

/// A username: 1–150 characters of letters, digits and `@ . + - _` (as Django allows).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UsernameError {
    #[error("a username must not be empty")]
    Empty,
    #[error("a username is at most {} characters", Username::MAX_LEN)]
    TooLong,
    #[error("a username may contain only letters, digits and @ . + - _")]
    BadCharacter,
}

impl Username {
    pub const MAX_LEN: usize = 150;

    pub fn parse(value: &str) -> Result<Self, UsernameError> {
        if value.is_empty() {
            return Err(UsernameError::Empty);
        }
        if value.chars().count() > Self::MAX_LEN {
            return Err(UsernameError::TooLong);
        }
        if !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@.+-_".contains(c))
        {
            return Err(UsernameError::BadCharacter);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so `{:<32}` lines up a column of names (the CLI's user list).
        f.pad(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_parsed_at_the_edge() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("a.b+c-d_e@example.org").is_ok());
        assert_eq!(Username::parse(""), Err(UsernameError::Empty));
        assert_eq!(
            Username::parse(&"a".repeat(151)),
            Err(UsernameError::TooLong)
        );
        for bad in ["a b", "a/b", "ä", "a\0", "<script>", "a\nb"] {
            assert_eq!(
                Username::parse(bad),
                Err(UsernameError::BadCharacter),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_username_pads_like_text() {
        let name = Username::parse("bob").unwrap();
        assert_eq!(format!("{name:<6}|"), "bob   |");
    }
}
