//! The access policy, pure: who may read a file, and who may use the path view.
//! Nothing here touches the database; `db::models::file` mirrors `can_read` in SQL for
//! listings, and the integration tests check both agree.

use crate::config::PathRule;
use crate::db::models::user::User;
use crate::domain::{AccessRule, Role, UserId};

/// What the policy needs to know about a file.
#[derive(Debug, Clone, Copy)]
pub struct FileAccess<'a> {
    pub owner_id: &'a UserId,
    pub rule: AccessRule,
    /// Whether the user is on the file's list of readers (`users` rule).
    pub listed: bool,
}

pub fn can_read(user: &User, file: FileAccess<'_>) -> bool {
    if !user.is_active {
        return false;
    }
    if user.role() >= Role::Staff {
        return true;
    }
    let is_owner = user.id == *file.owner_id;
    match file.rule {
        AccessRule::Owner => is_owner,
        AccessRule::Staff => false,
        AccessRule::Authenticated => true,
        AccessRule::Users => is_owner || file.listed,
    }
}

/// The path view's global rule (`[access] path_rule`).
pub fn can_use_path_view(user: &User, rule: PathRule) -> bool {
    if !user.is_active {
        return false;
    }
    match rule {
        PathRule::Superuser => user.role() >= Role::Superuser,
        PathRule::Staff => user.role() >= Role::Staff,
        PathRule::Authenticated => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Username;
    use chrono::Utc;

    /// The same id for the same name: the name's bytes, zero-padded to 16, in hex.
    fn id(name: &str) -> UserId {
        UserId::parse(&hex::encode(format!("{name:\0<16}"))).unwrap()
    }

    fn user(name: &str, role: Role, active: bool) -> User {
        let now = Utc::now().naive_utc();
        User {
            id: id(name),
            username: Username::parse(name).unwrap(),
            password_hash: String::new(),
            is_active: active,
            is_staff: role >= Role::Staff,
            is_superuser: role >= Role::Superuser,
            session_epoch: 0,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        }
    }

    #[test]
    fn the_rules_table() {
        use AccessRule::*;
        let owner = user("owner", Role::User, true);
        let listed = user("listed", Role::User, true);
        let other = user("other", Role::User, true);
        let staff = user("staff", Role::Staff, true);
        let root = user("root", Role::Superuser, true);
        let inactive_root = user("gone", Role::Superuser, false);
        let inactive_owner = user("owner", Role::User, false);
        // (user, is listed, [owner, staff, authenticated, users])
        let table = [
            (&owner, false, [true, false, true, true]),
            (&listed, true, [false, false, true, true]),
            (&other, false, [false, false, true, false]),
            (&staff, false, [true, true, true, true]),
            (&root, false, [true, true, true, true]),
            (&inactive_root, false, [false, false, false, false]),
            (&inactive_owner, false, [false, false, false, false]),
        ];
        for (who, listed, expected) in table {
            for (rule, want) in [Owner, Staff, Authenticated, Users]
                .into_iter()
                .zip(expected)
            {
                let file = FileAccess {
                    owner_id: &id("owner"),
                    rule,
                    listed,
                };
                assert_eq!(can_read(who, file), want, "{} / {rule:?}", who.username);
            }
        }
    }

    #[test]
    fn the_path_view_rule() {
        let plain = user("u", Role::User, true);
        let staff = user("s", Role::Staff, true);
        let root = user("r", Role::Superuser, true);
        assert!(!can_use_path_view(&staff, PathRule::Superuser));
        assert!(can_use_path_view(&root, PathRule::Superuser));
        assert!(can_use_path_view(&staff, PathRule::Staff));
        assert!(!can_use_path_view(&plain, PathRule::Staff));
        assert!(can_use_path_view(&plain, PathRule::Authenticated));
        assert!(!can_use_path_view(
            &user("x", Role::Superuser, false),
            PathRule::Authenticated
        ));
    }
}
