// One portable schema for every backend: text ids, BIGINT counters, TIMESTAMP columns.

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        is_active -> Bool,
        is_staff -> Bool,
        is_superuser -> Bool,
        session_epoch -> BigInt,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    ended_sessions (sid) {
        sid -> Text,
        expires_at -> Timestamp,
    }
}
