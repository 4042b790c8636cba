//! Superusers delete users at `/admin/users/{id}/delete` (files reassigned or the delete
//! refused, never themselves, never the last active superuser, sessions ended at once, share
//! links removed, recorded), and search and page the user list.

use private_media::db::models::user::User;
use private_media::domain::{Role, Username};
use reqwest::StatusCode;

use crate::audit_log::wait_for_events;
use crate::helpers::{Browser, TestApp, location, spawn_app, upload_file};

fn find(app: &TestApp, name: &str) -> Option<User> {
    let mut conn = app.db.get().expect("connection");
    User::find_by_username(&mut conn, &Username::parse(name).expect("name")).expect("query")
}

async fn delete(root: &Browser, user: &User, reassign_to: &str) -> reqwest::Response {
    let page = format!("/admin/users/{}/delete", user.id);
    let token = root.csrf_token(&page).await;
    root.post_form(
        &page,
        &[("csrf_token", &token), ("reassign_to", reassign_to)],
    )
    .await
}

fn share_link_count(app: &TestApp) -> usize {
    use diesel::prelude::*;
    use private_media::db::schema::share_links;
    let mut conn = app.db.get().expect("connection");
    share_links::table
        .count()
        .get_result::<i64>(&mut conn)
        .expect("count") as usize
}

async fn make_link(staff: &Browser, file: &str) {
    let path = format!("/admin/files/{file}/links");
    let token = staff.csrf_token(&format!("/admin/files/{file}")).await;
    let response = staff
        .post_form(
            &path,
            &[
                ("csrf_token", &token),
                ("label", "for a client"),
                ("expires_in", "7d"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "no link made");
}

#[tokio::test]
async fn deleting_a_user_gives_their_files_to_the_chosen_user_and_ends_their_sessions() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let stella = app.logged_in("stella", Role::Staff).await;
    app.add_user("heir", Role::Staff);
    let paul = app.logged_in("paul", Role::User).await;
    // One file stella owns, one she uploaded for paul, one shared with her by name.
    let own = upload_file(&app, &stella, "own.txt", b"mine", "owner", None, &[]).await;
    let for_paul = upload_file(&app, &stella, "pay.txt", b"pay", "owner", Some("paul"), &[]).await;
    let shared = upload_file(&app, &root, "memo.txt", b"memo", "users", None, &["stella"]).await;
    make_link(&stella, own.id.as_str()).await;
    assert_eq!(share_link_count(&app), 1);
    let stella_row = find(&app, "stella").expect("stella");

    let confirm = root
        .get_text(&format!("/admin/users/{}/delete", stella_row.id))
        .await;
    assert!(confirm.contains("They own 1 file"), "{confirm}");
    assert!(confirm.contains("The 1 share link they made"), "{confirm}");

    let response = delete(&root, &stella_row, "heir").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/admin/users");
    let list = root.get_text("/admin/users").await;
    assert!(list.contains("Deleted “stella”"), "{list}");
    assert!(list.contains("1 file now belongs to “heir”"), "{list}");
    assert!(list.contains("1 share link was removed"), "{list}");

    assert!(find(&app, "stella").is_none());
    let heir = find(&app, "heir").expect("heir");
    let paul_row = find(&app, "paul").expect("paul");
    let rows = app.file_rows();
    let row = |id: &private_media::domain::FileId| rows.iter().find(|f| &f.id == id).expect("row");
    assert_eq!(row(&own.id).owner_id, heir.id);
    assert_eq!(
        row(&for_paul.id).owner_id,
        paul_row.id,
        "paul's file changed hands"
    );
    assert_eq!(
        row(&shared.id).owner_id,
        find(&app, "root").expect("root").id
    );
    assert_eq!(share_link_count(&app), 0, "her share link still works");
    // Her session ended at once; paul's did not.
    assert_eq!(
        stella.get("/admin/files").await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(paul.get("/files").await.status(), StatusCode::OK);
    assert_eq!(
        paul.get(&format!("/files/{}/download", for_paul.id))
            .await
            .status(),
        StatusCode::OK
    );

    let recorded = wait_for_events(&app, "user_deleted", 1).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].username.as_deref(), Some("root"));
    let detail = recorded[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains("“stella”") && detail.contains("“heir”"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_user_who_owns_files_is_not_deleted_without_an_heir() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let stella = app.logged_in("stella", Role::Staff).await;
    upload_file(&app, &stella, "own.txt", b"mine", "owner", None, &[]).await;
    let stella_row = find(&app, "stella").expect("stella");
    app.add_user("gone", Role::User);
    app.cli(&["user", "deactivate", "gone"], None);

    for (heir, status, message) in [
        (
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            "owns 1 file: choose a user",
        ),
        (
            "nobody",
            StatusCode::UNPROCESSABLE_ENTITY,
            "no active user named `nobody`",
        ),
        (
            "gone",
            StatusCode::UNPROCESSABLE_ENTITY,
            "no active user named `gone`",
        ),
        (
            "stella",
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot be given to the user",
        ),
        (
            "bad name!",
            StatusCode::UNPROCESSABLE_ENTITY,
            "may contain only",
        ),
    ] {
        let response = delete(&root, &stella_row, heir).await;
        assert_eq!(response.status(), status, "{heir:?}");
        let page = response.text().await.expect("page");
        assert!(page.contains(message), "{heir:?}: {page}");
        assert!(
            page.contains(r#"aria-invalid="true" aria-describedby="reassign_to-error""#),
            "{heir:?}: {page}"
        );
        assert!(find(&app, "stella").is_some(), "{heir:?}: deleted anyway");
    }
    assert_eq!(app.file_rows().len(), 1);
    assert_eq!(stella.get("/admin/files").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_user_who_owns_nothing_is_deleted_without_an_heir() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let stella = app.logged_in("stella", Role::Staff).await;
    app.add_user("paul", Role::User);
    let for_paul = upload_file(&app, &stella, "pay.txt", b"pay", "owner", Some("paul"), &[]).await;
    let stella_row = find(&app, "stella").expect("stella");
    let response = delete(&root, &stella_row, "").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(find(&app, "stella").is_none());
    // The file she uploaded for paul stays paul's.
    let row = app.file_rows().remove(0);
    assert_eq!(row.id, for_paul.id);
    assert_eq!(row.owner_id, find(&app, "paul").expect("paul").id);
}

#[tokio::test]
async fn nobody_deletes_themselves() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    app.add_user("other", Role::Superuser);
    let root_row = find(&app, "root").expect("root");
    let confirm = root
        .get_text(&format!("/admin/users/{}/delete", root_row.id))
        .await;
    assert!(confirm.contains("you cannot delete it"), "{confirm}");
    assert!(!confirm.contains("name=\"reassign_to\""), "{confirm}");
    let response = delete(&root, &root_row, "").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.expect("page");
    assert!(page.contains("cannot delete your own account"), "{page}");
    assert!(find(&app, "root").is_some());
    assert_eq!(root.get("/admin/users").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_inactive_superuser_may_go_and_an_active_one_by_another_superuser() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let boss = app.add_user("boss", Role::Superuser);
    let peer = app.logged_in("peer", Role::Superuser).await;
    app.cli(&["user", "deactivate", "boss"], None);
    let response = delete(&root, &boss, "").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(find(&app, "boss").is_none());
    let root_row = find(&app, "root").expect("root");
    let response = delete(&peer, &root_row, "").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(find(&app, "root").is_none());
    assert_eq!(
        root.get("/admin/users").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn only_superusers_delete_users_and_only_with_a_csrf_token() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let target = app.add_user("target", Role::User);
    for (name, role) in [("stella", Role::Staff), ("paul", Role::User)] {
        let browser = app.logged_in(name, role).await;
        let page = format!("/admin/users/{}/delete", target.id);
        assert_eq!(browser.get(&page).await.status(), StatusCode::FORBIDDEN);
        let token = browser.csrf_token("/files").await;
        let response = browser
            .post_form(&page, &[("csrf_token", &token), ("reassign_to", "")])
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}");
    }
    let response = root
        .post_form(
            &format!("/admin/users/{}/delete", target.id),
            &[("reassign_to", "")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(find(&app, "target").is_some(), "deleted without a token");
    // Unknown and malformed ids: 404.
    for id in ["0123456789abcdef0123456789abcdef", "nope"] {
        assert_eq!(
            root.get(&format!("/admin/users/{id}/delete"))
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
    }
    let anonymous = app
        .browser()
        .get(&format!("/admin/users/{}/delete", target.id))
        .await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_user_list_is_searched_and_paged() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    {
        use private_media::auth::password::NewPassword;
        use private_media::db::models::user::NewUser;
        // One hash for all: 120 argon2 runs would take a while.
        let hash = NewPassword::parse("a fine new password".into())
            .unwrap()
            .hash()
            .unwrap();
        let mut conn = app.db.get().expect("connection");
        for i in 0..120 {
            let name = if i % 10 == 0 {
                format!("Anna_{i:03}")
            } else {
                format!("user{i:03}")
            };
            User::create(
                &mut conn,
                NewUser {
                    username: Username::parse(&name).unwrap(),
                    password_hash: hash.clone(),
                    role: Role::User,
                },
            )
            .unwrap();
        }
    }
    let first = root.get_text("/admin/users").await;
    assert!(first.contains("Page 1 of 3 · 121 users"), "{first}");
    assert!(
        first.contains(r#"href="/admin/users?page=2" rel="next""#),
        "{first}"
    );
    let third = root.get_text("/admin/users?page=3").await;
    assert!(third.contains("Page 3 of 3"), "{third}");
    assert!(third.contains("user119"), "{third}");
    assert!(!third.contains("rel=\"next\""), "{third}");
    // Past the end: the last page; nonsense: the first.
    assert!(
        root.get_text("/admin/users?page=99")
            .await
            .contains("Page 3 of 3")
    );
    assert!(
        root.get_text("/admin/users?page=x")
            .await
            .contains("Page 1 of 3")
    );

    // Any case; `_` is a character, not a wildcard.
    let found = root.get_text("/admin/users?q=anna_").await;
    assert!(found.contains("Page 1 of 1 · 12 users"), "{found}");
    assert!(
        found.contains("Anna_000") && found.contains("Anna_110"),
        "{found}"
    );
    assert!(!found.contains("user001"), "{found}");
    let none = root.get_text("/admin/users?q=a_n").await;
    assert!(none.contains("No username contains “a_n”"), "{none}");
    let paged = root.get_text("/admin/users?q=user&page=2").await;
    assert!(paged.contains("Page 2 of 3 · 108 users"), "{paged}");
    assert!(
        paged.contains(r#"href="/admin/users?page=1&#38;q=user" rel="prev""#),
        "{paged}"
    );
}
