//! Rows are read into typed values: text in a column that does not parse is a database
//! error, never a value, a fallback or a panic (on SQLite and on PostgreSQL alike).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use private_media::db::DbError;
use private_media::db::models::file::FileRow;
use private_media::db::models::user::User;
use private_media::domain::{AccessRule, FileId, Role, StorageKey, UserId, Username};

use crate::helpers::spawn_app;

/// Writes a file row by hand, as nothing in the app would, with the given key.
fn insert_file_row(app: &crate::helpers::TestApp, owner: &UserId, key: &str) -> FileId {
    let id = FileId::generate();
    let mut conn = app.db.get().expect("connection");
    conn.batch_execute(&format!(
        "INSERT INTO files (id, title, original_name, storage, storage_key, size, content_type, \
         sha256, owner_id, uploaded_by_id, access, uploaded_at, updated_at) VALUES ('{id}', \
         'hand-made', 'hand-made.txt', 'local', '{key}', 1, 'text/plain', '00', '{owner}', \
         '{owner}', 'authenticated', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
    ))
    .expect("insert a row by hand");
    id
}

/// A deserialization error whose causes name the kind of value and the text that is not one
/// (the log line of a failed request carries the whole chain).
fn is_bad_value(error: &DbError, what: &str, value: &str) -> bool {
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    matches!(
        error,
        DbError::Query(diesel::result::Error::DeserializationError(_))
    ) && chain.contains(&format!("invalid {what} {value:?}"))
}

#[tokio::test]
async fn a_row_with_a_bad_storage_key_is_a_database_error() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let owner = app.add_user("olivia", Role::User);
    let id = insert_file_row(&app, &owner.id, "../outside.txt");

    let mut conn = app.db.get().expect("connection");
    let error = FileRow::find(&mut conn, &id).expect_err("a bad key is not a row");
    assert!(
        is_bad_value(&error, "storage key", "../outside.txt"),
        "{error:?}"
    );
    // The pages that read it answer 500, not a download of some other path.
    let download = staff.get(&format!("/files/{id}/download")).await;
    assert_eq!(download.status().as_u16(), 500);
    let detail = staff.get(&format!("/admin/files/{id}")).await;
    assert_eq!(detail.status().as_u16(), 500);
}

#[tokio::test]
async fn a_row_with_a_bad_username_is_a_database_error() {
    let app = spawn_app().await;
    let mut conn = app.db.get().expect("connection");
    conn.batch_execute(&format!(
        "INSERT INTO users (id, username, password_hash, is_active, is_staff, is_superuser, \
         session_epoch, created_at, updated_at) VALUES ('{}', 'no spaces', 'x', TRUE, FALSE, \
         FALSE, 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        UserId::generate()
    ))
    .expect("insert a row by hand");
    let error = User::list(&mut conn).expect_err("a bad name is not a user");
    assert!(is_bad_value(&error, "username", "no spaces"), "{error:?}");
}

#[tokio::test]
async fn every_value_type_reads_back_what_it_wrote_and_refuses_bad_text() {
    use diesel::dsl::sql;
    use diesel::sql_types::Text;
    let app = spawn_app().await;
    let mut conn = app.db.get().expect("connection");
    let read = |conn: &mut private_media::db::Pooled, text: &str| {
        diesel::select(sql::<Text>(&format!("'{text}'")))
            .get_result::<AccessRule>(conn)
            .map_err(DbError::from)
    };
    for rule in AccessRule::ALL {
        assert_eq!(read(&mut conn, rule.as_str()).expect("a rule"), rule);
    }
    let error = read(&mut conn, "everyone").expect_err("not a rule");
    assert!(is_bad_value(&error, "access rule", "everyone"), "{error:?}");

    let key = StorageKey::parse("2026/01/01/a.txt").expect("key");
    let back: StorageKey = diesel::select(key.clone().into_sql::<Text>())
        .get_result(&mut *conn)
        .expect("a key");
    assert_eq!(back, key);
    let name = Username::parse("alice").expect("name");
    let back: Username = diesel::select(name.clone().into_sql::<Text>())
        .get_result(&mut *conn)
        .expect("a name");
    assert_eq!(back, name);
    let id = UserId::generate();
    let back: UserId = diesel::select((&id).into_sql::<Text>())
        .get_result(&mut *conn)
        .expect("an id");
    assert_eq!(back, id);
    let bad = diesel::select(sql::<Text>("'ABC'"))
        .get_result::<FileId>(&mut *conn)
        .map_err(DbError::from)
        .expect_err("not an id");
    assert!(is_bad_value(&bad, "file id", "ABC"), "{bad:?}");
}
