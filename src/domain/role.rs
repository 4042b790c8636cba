//! What a user may do. Stored as the `is_staff` and `is_superuser` flags of a user's row.

/// What a user may do, in increasing order, so checks read `role >= Role::Staff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    User,
    Staff,
    Superuser,
}

impl Role {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "user" => Some(Role::User),
            "staff" => Some(Role::Staff),
            "superuser" => Some(Role::Superuser),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Staff => "staff",
            Role::Superuser => "superuser",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Superuser > Role::Staff);
        assert!(Role::Staff > Role::User);
    }

    #[test]
    fn roles_round_trip_through_text() {
        for role in [Role::User, Role::Staff, Role::Superuser] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }
}
