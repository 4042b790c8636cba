//! Search in the file lists: any case, in any script, the same on SQLite and PostgreSQL;
//! `%` and `_` are only themselves; an edit is found by its new title at once; rows written
//! before the folded column (or by hand) are folded at start.

use diesel::connection::SimpleConnection;
use private_media::db::models::file::FileRow;
use private_media::domain::{Role, UserId};

use crate::helpers::{Browser, Part, TestApp, location, spawn_app, urlencode};

/// Uploads one file with `title` under `access` as `staff`; returns its id.
async fn upload_titled(staff: &Browser, title: &str, file_name: &str, access: &str) -> String {
    let token = staff.csrf_token("/admin/files/new").await;
    let response = staff
        .post_multipart(&[
            Part::Text("csrf_token", &token),
            Part::Text("title", title),
            Part::Text("access", access),
            Part::File(file_name, b"data"),
        ])
        .await;
    assert_eq!(response.status().as_u16(), 303, "upload of {title}");
    location(&response)
        .rsplit('/')
        .next()
        .expect("an id")
        .to_owned()
}

/// The ids of `ids` that the admin search for `q` lists, in the order given.
async fn found(browser: &Browser, q: &str, ids: &[&str]) -> Vec<String> {
    let page = browser
        .get_text(&format!("/admin/files?q={}", urlencode(q)))
        .await;
    ids.iter()
        .filter(|id| page.contains(&format!("/admin/files/{id}\"")))
        .map(|id| id.to_string())
        .collect()
}

#[tokio::test]
async fn search_ignores_case_beyond_ascii_in_both_directions() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let capital = upload_titled(&staff, "Überweisung März", "a.txt", "staff").await;
    let small = upload_titled(&staff, "überweisung april", "b.txt", "staff").await;
    let sharp = upload_titled(&staff, "Straße 7", "c.txt", "staff").await;
    let double = upload_titled(&staff, "STRASSE 5", "d.txt", "staff").await;
    let dotted = upload_titled(&staff, "İstanbul trip", "e.txt", "staff").await;
    let greek = upload_titled(&staff, "ΟΔΟΣ", "f.txt", "staff").await;
    let all = [capital.as_str(), &small, &sharp, &double, &dotted, &greek];

    let cases: [(&str, &[&str]); 10] = [
        ("überweisung", &[&capital, &small]),
        ("ÜBERWEISUNG", &[&capital, &small]),
        // Decomposed (u + combining diaeresis), as some systems write names.
        ("U\u{0308}berweisung", &[&capital, &small]),
        ("märz", &[&capital]),
        ("strasse", &[&sharp, &double]),
        ("STRAßE", &[&sharp, &double]),
        ("istanbul", &[&dotted]),
        ("İSTANBUL", &[&dotted]),
        ("οδος", &[&greek]),
        ("οδοσ", &[&greek]),
    ];
    for (q, expected) in cases {
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(found(&staff, q, &all).await, expected, "search for {q:?}");
    }
}

#[tokio::test]
async fn search_looks_in_the_original_name_too_in_any_case() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let id = upload_titled(&staff, "Lease", "Contract-2026.PDF", "staff").await;
    let other = upload_titled(&staff, "Other", "notes.txt", "staff").await;
    let ids = [id.as_str(), &other];
    assert_eq!(
        found(&staff, "contract-2026.pdf", &ids).await,
        [id.as_str()]
    );
    // A match may not span the title and the name.
    assert!(found(&staff, "lease contract", &ids).await.is_empty());
}

#[tokio::test]
async fn percent_and_underscore_in_a_search_match_only_themselves() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let percent = upload_titled(&staff, "50% off", "a.txt", "staff").await;
    let digits = upload_titled(&staff, "5000 off", "b.txt", "staff").await;
    let underscore = upload_titled(&staff, "a_b", "c.txt", "staff").await;
    let letter = upload_titled(&staff, "axb", "d.txt", "staff").await;
    let backslash = upload_titled(&staff, "back\\slash", "e.txt", "staff").await;
    let all = [percent.as_str(), &digits, &underscore, &letter, &backslash];
    assert_eq!(found(&staff, "50%", &all).await, [percent.as_str()]);
    assert_eq!(found(&staff, "%", &all).await, [percent.as_str()]);
    assert_eq!(found(&staff, "a_b", &all).await, [underscore.as_str()]);
    assert_eq!(found(&staff, "_", &all).await, [underscore.as_str()]);
    assert_eq!(found(&staff, "k\\s", &all).await, [backslash.as_str()]);
}

#[tokio::test]
async fn a_title_edit_changes_what_search_finds() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let id = upload_titled(&staff, "Draft plan", "plan.txt", "staff").await;
    let ids = [id.as_str()];
    assert_eq!(found(&staff, "draft", &ids).await, [id.as_str()]);

    let path = format!("/admin/files/{id}");
    let token = staff.csrf_token(&path).await;
    let saved = staff
        .post_form(
            &path,
            &[
                ("csrf_token", &token),
                ("title", "Final Überblick"),
                ("access", "staff"),
            ],
        )
        .await;
    assert_eq!(saved.status().as_u16(), 303);
    assert!(found(&staff, "draft", &ids).await.is_empty());
    assert_eq!(found(&staff, "ÜBERBLICK", &ids).await, [id.as_str()]);
    // The name did not change, and is still found.
    assert_eq!(found(&staff, "PLAN.TXT", &ids).await, [id.as_str()]);
}

#[tokio::test]
async fn a_users_search_lists_only_the_files_they_may_read() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let user = app.logged_in("alice", Role::User).await;
    upload_titled(&staff, "Überweisung für alle", "a.txt", "authenticated").await;
    upload_titled(&staff, "Überweisung intern", "b.txt", "staff").await;
    let page = user
        .get_text(&format!("/files?q={}", urlencode("üBERWEISUNG")))
        .await;
    assert!(page.contains("Überweisung für alle"), "{page}");
    assert!(!page.contains("Überweisung intern"), "{page}");
}

/// Writes `count` file rows by hand, as a database from before the folded column has them:
/// no `search_text` (its default, '').
fn insert_unfolded_rows(app: &TestApp, owner: &UserId, count: usize) {
    let values: Vec<String> = (0..count)
        .map(|i| {
            format!(
                "('{id}', 'Ärger {i}', 'HAND-{i}.TXT', 'local', 'hand/{id}.txt', 1, 'text/plain', \
                 '00', '{owner}', '{owner}', 'staff', '2026-01-01 00:00:00', \
                 '2026-01-01 00:00:00')",
                id = private_media::domain::FileId::generate()
            )
        })
        .collect();
    let mut conn = app.db.get().expect("connection");
    conn.batch_execute(&format!(
        "INSERT INTO files (id, title, original_name, storage, storage_key, size, content_type, \
         sha256, owner_id, uploaded_by_id, access, uploaded_at, updated_at) VALUES {}",
        values.join(", ")
    ))
    .expect("insert rows by hand");
}

#[tokio::test]
async fn rows_without_search_text_are_folded_when_migrations_run_and_only_once() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let owner = app.add_user("olivia", Role::User);
    // More than a batch of the fold, and more than a search pages from its matches' ids.
    insert_unfolded_rows(&app, &owner.id, 1201);
    let page = staff
        .get_text(&format!("/admin/files?q={}", urlencode("ärger")))
        .await;
    assert!(page.contains("· 0 files"), "not folded yet: {page}");

    // What a start runs: the migrations (none pending), then the fold.
    assert_eq!(app.db.run_migrations().expect("migrations"), 0);
    let page = staff
        .get_text(&format!("/admin/files?q={}", urlencode("ÄRGER")))
        .await;
    assert!(page.contains("· 1201 files"), "{page}");
    let page = staff.get_text("/admin/files?q=hand-1200.txt").await;
    assert!(page.contains("· 1 file<"), "{page}");
    assert!(page.contains("Ärger 1200"), "{page}");

    let mut conn = app.db.get().expect("connection");
    assert_eq!(FileRow::fold_unfolded(&mut conn).expect("fold"), 0);
    drop(conn);
    insert_unfolded_rows(&app, &owner.id, 1);
    let mut conn = app.db.get().expect("connection");
    assert_eq!(FileRow::fold_unfolded(&mut conn).expect("fold"), 1);
}
