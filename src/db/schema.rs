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

diesel::table! {
    files (id) {
        id -> Text,
        title -> Text,
        original_name -> Text,
        storage -> Text,
        storage_key -> Text,
        size -> BigInt,
        content_type -> Text,
        sha256 -> Text,
        owner_id -> Text,
        uploaded_by_id -> Text,
        access -> Text,
        uploaded_at -> Timestamp,
        updated_at -> Timestamp,
        search_text -> Text,
        type_family -> Text,
        image_width -> Nullable<Integer>,
        image_height -> Nullable<Integer>,
        thumbnails -> Bool,
    }
}

diesel::table! {
    file_readers (file_id, user_id) {
        file_id -> Text,
        user_id -> Text,
    }
}

diesel::table! {
    pending_uploads (storage, storage_key) {
        storage -> Text,
        storage_key -> Text,
        instance -> Text,
        size -> BigInt,
        sha256 -> Text,
        started_at -> Timestamp,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Text,
        username -> Text,
        address -> Nullable<Text>,
        cleared -> Bool,
        failed_at -> Timestamp,
    }
}

diesel::table! {
    share_links (id) {
        id -> Text,
        file_id -> Text,
        token_sha256 -> Text,
        label -> Text,
        created_by_id -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        max_downloads -> Nullable<BigInt>,
        downloads -> BigInt,
        password_hash -> Nullable<Text>,
        password_attempts -> BigInt,
        password_window_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        user_id -> Text,
        token_sha256 -> Text,
        name -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(file_readers -> files (file_id));
diesel::joinable!(share_links -> files (file_id));
diesel::joinable!(share_links -> users (created_by_id));
diesel::joinable!(file_readers -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    files,
    file_readers,
    ended_sessions,
    login_failures,
    pending_uploads,
    share_links,
    api_tokens
);

// On SQLite in a file of its own (`Db::audit`): never joined with the tables above.
diesel::table! {
    audit_events (id) {
        id -> BigInt,
        at -> Timestamp,
        event -> Text,
        outcome -> Nullable<Text>,
        status -> Nullable<Integer>,
        route -> Nullable<Text>,
        delivery -> Nullable<Text>,
        method -> Nullable<Text>,
        byte_range -> Nullable<Text>,
        user_id -> Nullable<Text>,
        username -> Nullable<Text>,
        link_id -> Nullable<Text>,
        file_id -> Nullable<Text>,
        file_name -> Nullable<Text>,
        storage_key -> Nullable<Text>,
        client -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}
