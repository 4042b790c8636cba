//! A file's access rule: the value a row holds. Who may read under it is decided by
//! `access::can_read` (and its SQL twin for listings).

/// A file's access rule. Staff and superusers can read under every rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessRule {
    /// The owner, staff and superusers.
    Owner,
    /// Staff and superusers.
    Staff,
    /// Any logged-in user.
    Authenticated,
    /// The owner, the listed users, staff and superusers.
    Users,
}

impl AccessRule {
    pub const ALL: [AccessRule; 4] = [
        AccessRule::Owner,
        AccessRule::Staff,
        AccessRule::Authenticated,
        AccessRule::Users,
    ];

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "owner" => Some(Self::Owner),
            "staff" => Some(Self::Staff),
            "authenticated" => Some(Self::Authenticated),
            "users" => Some(Self::Users),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Staff => "staff",
            Self::Authenticated => "authenticated",
            Self::Users => "users",
        }
    }

    /// The rule in words, for the admin.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Owner => "Only the owner (and staff)",
            Self::Staff => "Staff only",
            Self::Authenticated => "Every logged-in user",
            Self::Users => "The owner and the listed users (and staff)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_round_trip_through_text() {
        for rule in AccessRule::ALL {
            assert_eq!(AccessRule::parse(rule.as_str()), Some(rule));
        }
        assert_eq!(AccessRule::parse("everyone"), None);
    }
}
