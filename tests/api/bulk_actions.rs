//! Bulk actions on the admin list (README: "The admin"): delete, change access, change owner
//! for the checked files, each through a page that lists them, CSRF on every POST, staff
//! only, one audit event per file, a message with the counts, and the list it came from.

use private_media::domain::Role;
use reqwest::StatusCode;

use crate::audit_log::wait_for_events;
use crate::helpers::{Browser, TestApp, location, spawn_app, upload_file};

/// Three files of `olivia`'s under the `owner` rule; their ids.
async fn three_files(app: &TestApp, staff: &Browser) -> Vec<String> {
    app.add_user("olivia", Role::User);
    let mut ids = Vec::new();
    for name in ["one.txt", "two.txt", "three.txt"] {
        let row = upload_file(app, staff, name, b"data", "owner", Some("olivia"), &[]).await;
        ids.push(row.id.to_string());
    }
    ids
}

fn query(action: &str, ids: &[&str], back: &str) -> String {
    let mut q = format!("/admin/files/bulk?action={action}");
    for id in ids {
        q.push_str(&format!("&ids={id}"));
    }
    q.push_str(&format!("&back={}", crate::helpers::urlencode(back)));
    q
}

fn fields<'a>(token: &'a str, ids: &'a [String], back: &'a str) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![("csrf_token", token), ("back", back)];
    fields.extend(ids.iter().map(|id| ("ids", id.as_str())));
    fields
}

#[tokio::test]
async fn the_list_offers_a_checkbox_per_row_and_the_bulk_form() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let ids = three_files(&app, &staff).await;
    let page = staff.get_text("/admin/files").await;
    assert!(page.contains(r#"<form method="get" action="/admin/files/bulk" id="bulk""#));
    for id in &ids {
        assert!(
            page.contains(&format!(r#"name="ids" value="{id}""#)),
            "{id}"
        );
    }
    assert!(page.contains(r#"<option value="delete">Delete…</option>"#));
    assert!(page.contains(r#"<script src="/static/lists.js" defer></script>"#));
    // Without the script, a link checks every row of this page.
    assert!(!page.contains(" checked>"));
    let all = staff.get_text("/admin/files?page=1&select=all").await;
    assert_eq!(all.matches(r#"name="ids""#).count(), 3);
    assert_eq!(all.matches(" checked>").count(), 3);
    let script = staff.get("/static/lists.js").await;
    assert_eq!(script.status(), StatusCode::OK);
}

#[tokio::test]
async fn bulk_delete_confirms_then_removes_rows_and_objects_and_records_each() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let ids = three_files(&app, &staff).await;
    let back = "/admin/files?page=1&type=document";
    let confirm = staff.get(&query("delete", &[&ids[0], &ids[1]], back)).await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let page = confirm.text().await.unwrap();
    assert!(page.contains("Delete 2 files?"), "{page}");
    assert!(page.contains(">one.txt<") && page.contains(">two.txt<"));
    assert!(!page.contains(">three.txt<"));
    assert!(page.contains(r#"action="/admin/files/bulk/delete""#));
    // Looking is not deleting.
    assert_eq!(app.file_rows().len(), 3);
    assert_eq!(app.stored_objects().len(), 3);

    let token = crate::helpers::csrf_token_in(&page).expect("a token");
    let chosen = ids[..2].to_vec();
    let response = staff
        .post_form("/admin/files/bulk/delete", &fields(&token, &chosen, back))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), back);
    let rows = app.file_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id.to_string(), ids[2]);
    assert_eq!(app.stored_objects().len(), 1);
    let list = staff.get_text(back).await;
    assert!(list.contains("Deleted 2 files."), "{list}");

    let events = wait_for_events(&app, "delete", 2).await;
    assert_eq!(events.len(), 2);
    for (event, id) in events.iter().zip(&chosen) {
        assert_eq!(event.file_id.as_deref(), Some(id.as_str()));
        assert_eq!(event.username.as_deref(), Some("stella"));
        assert!(event.detail.as_deref().unwrap_or("").contains("bulk"));
    }
}

#[tokio::test]
async fn bulk_posts_without_a_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let ids = three_files(&app, &staff).await;
    for (path, extra) in [
        ("/admin/files/bulk/delete", ("x", "y")),
        ("/admin/files/bulk/access", ("access", "authenticated")),
        ("/admin/files/bulk/owner", ("owner", "stella")),
    ] {
        let mut form: Vec<(&str, &str)> = ids.iter().map(|id| ("ids", id.as_str())).collect();
        form.push(extra);
        let response = staff.post_form(path, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        form.push(("csrf_token", "not-the-token"));
        let response = staff.post_form(path, &form).await;
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "{path} with a wrong token"
        );
    }
    let rows = app.file_rows();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.rule.as_str() == "owner"));
    assert_eq!(app.stored_objects().len(), 3);
}

#[tokio::test]
async fn a_plain_user_cannot_bulk_anything_and_anonymous_goes_to_login() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let ids = three_files(&app, &staff).await;
    let user = app.logged_in("paul", Role::User).await;
    let token = user.csrf_token("/files").await;
    let get = user.get(&query("delete", &[&ids[0]], "/admin/files")).await;
    assert_eq!(get.status(), StatusCode::FORBIDDEN);
    for (path, extra) in [
        ("/admin/files/bulk/delete", ("x", "y")),
        ("/admin/files/bulk/access", ("access", "authenticated")),
        ("/admin/files/bulk/owner", ("owner", "paul")),
    ] {
        let mut form = fields(&token, &ids, "/admin/files");
        form.push(extra);
        let response = user.post_form(path, &form).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let anonymous = app.browser();
    let get = anonymous
        .get(&query("delete", &[&ids[0]], "/admin/files"))
        .await;
    assert_eq!(get.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&get).starts_with("/login?next="),
        "{}",
        location(&get)
    );

    let rows = app.file_rows();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.rule.as_str() == "owner"));
    assert_eq!(app.stored_objects().len(), 3);
}

#[tokio::test]
async fn bulk_access_sets_rule_and_readers_of_each_file_and_records_old_and_new() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let ids = three_files(&app, &staff).await;
    let paul = app.logged_in("paul", Role::User).await;
    app.add_user("zoe", Role::User);
    // Before: paul reads none of them.
    for id in &ids {
        let r = paul.get(&format!("/files/{id}/download")).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let page = staff
        .get_text(&query("access", &[&ids[0], &ids[1]], "/admin/files"))
        .await;
    assert!(
        page.contains(r#"action="/admin/files/bulk/access""#),
        "{page}"
    );
    assert!(page.contains(r#"name="readers""#));
    let token = crate::helpers::csrf_token_in(&page).expect("a token");
    let chosen = ids[..2].to_vec();
    let mut form = fields(&token, &chosen, "/admin/files");
    form.push(("access", "users"));
    form.push(("readers", "paul, zoe"));
    let response = staff.post_form("/admin/files/bulk/access", &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/admin/files");

    // The access cache saw the change at once: paul reads the two, not the third.
    for (i, id) in ids.iter().enumerate() {
        let r = paul.get(&format!("/files/{id}/download")).await;
        let wanted = if i < 2 {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(r.status(), wanted, "file {i}");
    }
    let list = staff.get_text("/admin/files").await;
    assert!(
        list.contains("Changed who may download 2 files to"),
        "{list}"
    );
    // The access column names who reads: the owner first, then the readers.
    assert!(list.contains(">olivia, paul +1<"), "{list}");

    let events = wait_for_events(&app, "edit", 2).await;
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(
            event.detail.as_deref(),
            Some("access: owner → users (paul, zoe); bulk")
        );
    }

    // Again with the same rule and readers: nothing changes, nothing more is recorded.
    let response = staff.post_form("/admin/files/bulk/access", &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let list = staff.get_text("/admin/files").await;
    assert!(list.contains("2 files already had it."), "{list}");
    // Then back to `owner`: the readers go with the rule.
    let mut form = fields(&token, &chosen, "/admin/files");
    form.push(("access", "owner"));
    form.push(("readers", "paul"));
    let response = staff.post_form("/admin/files/bulk/access", &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    for id in &ids {
        let r = paul.get(&format!("/files/{id}/download")).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let events = wait_for_events(&app, "edit", 4).await;
    assert_eq!(events.len(), 4);
    assert_eq!(
        events[3].detail.as_deref(),
        Some("access: users (paul, zoe) → owner; bulk")
    );
}

#[tokio::test]
async fn bulk_access_with_a_bad_rule_or_an_unknown_reader_shows_the_form_again() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let ids = three_files(&app, &staff).await;
    let token = staff.csrf_token("/admin/files").await;
    let mut form = fields(&token, &ids, "/admin/files");
    form.push(("access", "everyone"));
    let response = staff.post_form("/admin/files/bulk/access", &form).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("Choose who may download the files."),
        "{page}"
    );
    assert!(page.contains(">one.txt<"));

    let mut form = fields(&token, &ids, "/admin/files");
    form.push(("access", "users"));
    form.push(("readers", "nobody-here"));
    let response = staff.post_form("/admin/files/bulk/access", &form).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("There is no user named “nobody-here”."),
        "{page}"
    );
    assert!(
        page.contains(r#"value="nobody-here""#),
        "what was typed stays"
    );
    assert!(page.contains(r#"aria-invalid="true""#));
    assert!(app.file_rows().iter().all(|r| r.rule.as_str() == "owner"));
}

#[tokio::test]
async fn bulk_owner_gives_the_files_to_another_user_and_records_who_had_them() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let ids = three_files(&app, &staff).await;
    let bob = app.logged_in("bob", Role::User).await;
    // The `owner` rule: bob reads them once they are his.
    let r = bob.get(&format!("/files/{}/download", ids[0])).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let page = staff
        .get_text(&query(
            "owner",
            &[&ids[0], &ids[1]],
            "/admin/files?sort=owner",
        ))
        .await;
    assert!(
        page.contains(r#"action="/admin/files/bulk/owner""#),
        "{page}"
    );
    let token = crate::helpers::csrf_token_in(&page).expect("a token");
    let chosen = ids[..2].to_vec();
    let mut form = fields(&token, &chosen, "/admin/files?sort=owner");
    form.push(("owner", "bob"));
    let response = staff.post_form("/admin/files/bulk/owner", &form).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/admin/files?sort=owner");
    let rows = app.file_rows();
    let bob_id = rows
        .iter()
        .find(|r| r.id.to_string() == ids[0])
        .map(|r| r.owner_id.clone())
        .expect("row");
    for row in &rows {
        let is_chosen = chosen.contains(&row.id.to_string());
        assert_eq!(row.owner_id == bob_id, is_chosen, "{}", row.original_name);
    }
    let r = bob.get(&format!("/files/{}/download", ids[0])).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = bob.get(&format!("/files/{}/download", ids[2])).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let list = staff.get_text("/admin/files").await;
    assert!(list.contains("Gave 2 files to bob."), "{list}");
    let events = wait_for_events(&app, "owner", 2).await;
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| e.detail.as_deref() == Some("owner: olivia → bob; bulk"))
    );

    // An inactive owner, as on a file's own page: refused, nothing changed.
    let ghost = app.add_user("ghost", Role::User);
    {
        let mut conn = app.db.get().expect("connection");
        private_media::db::models::user::User::set_active(&mut conn, &ghost.username, false)
            .expect("deactivate");
    }
    let mut form = fields(&token, &ids, "/admin/files");
    form.push(("owner", "ghost"));
    let response = staff.post_form("/admin/files/bulk/owner", &form).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        app.file_rows().iter().all(|r| r.owner_id != ghost.id),
        "a file went to an inactive user"
    );

    // An unknown owner: the form again, nothing changed.
    let mut form = fields(&token, &ids, "/admin/files");
    form.push(("owner", "nobody-here"));
    let response = staff.post_form("/admin/files/bulk/owner", &form).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("There is no active user named “nobody-here”."),
        "{page}"
    );
    let mut form = fields(&token, &ids, "/admin/files");
    form.push(("owner", ""));
    let response = staff.post_form("/admin/files/bulk/owner", &form).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.file_rows()
            .iter()
            .filter(|r| r.owner_id == bob_id)
            .count(),
        2
    );
}

#[tokio::test]
async fn nothing_selected_or_no_action_goes_back_with_a_message() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let ids = three_files(&app, &staff).await;
    let response = staff
        .get(&query("delete", &[], "/admin/files?page=1&sort=size"))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/admin/files?page=1&sort=size");
    let list = staff.get_text("/admin/files").await;
    assert!(
        list.contains("Select at least one file. Nothing was changed."),
        "{list}"
    );

    let response = staff
        .get(&format!("/admin/files/bulk?ids={}", ids[0]))
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/admin/files");
    let list = staff.get_text("/admin/files").await;
    assert!(
        list.contains("Choose what to do with the selected files."),
        "{list}"
    );

    // `back` cannot leave the list.
    let response = staff
        .get(&query("delete", &[], "https://elsewhere.example/"))
        .await;
    assert_eq!(location(&response), "/admin/files");
    assert_eq!(app.file_rows().len(), 3);
}

#[tokio::test]
async fn a_bad_id_or_too_many_ids_is_a_clear_400() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    three_files(&app, &staff).await;
    let response = staff
        .get("/admin/files/bulk?action=delete&ids=..%2Fetc")
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("is not a file id"));

    let token = staff.csrf_token("/admin/files").await;
    let many: Vec<String> = (0..101).map(|i| format!("{i:032x}")).collect();
    let response = staff
        .post_form(
            "/admin/files/bulk/delete",
            &fields(&token, &many, "/admin/files"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("At most 100 files"));
    assert_eq!(app.file_rows().len(), 3);
}

#[tokio::test]
async fn files_deleted_meanwhile_are_counted_not_failed() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let ids = three_files(&app, &staff).await;
    let token = staff.csrf_token("/admin/files").await;
    let response = staff
        .post_form(
            "/admin/files/bulk/delete",
            &fields(&token, &ids[..1], "/admin/files"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // The first is gone already; the other two go now.
    let response = staff
        .post_form(
            "/admin/files/bulk/delete",
            &fields(&token, &ids, "/admin/files"),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let list = staff.get_text("/admin/files").await;
    assert!(
        list.contains("Deleted 2 files. 1 file no longer existed."),
        "{list}"
    );
    assert!(app.file_rows().is_empty());
    assert!(app.stored_objects().is_empty());
}

/// A listed reader deleted while a bulk change of 100 files runs: the change is all the
/// files or none, and each changed file has its event (it used to stop half-way, with the
/// files before the failure changed and no event written for any of them).
#[tokio::test]
async fn a_reader_deleted_during_a_bulk_change_leaves_all_or_nothing_and_every_event() {
    use private_media::domain::AccessRule;
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let root = app.logged_in("root", Role::Superuser).await;
    app.add_user("paul", Role::User);
    let mut partial_before = 0;
    for round in 0..6u64 {
        let names: Vec<String> = (0..100).map(|i| format!("r{round}-{i}.txt")).collect();
        let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
        assert_eq!(
            staff.upload("owner", &files).await.status(),
            StatusCode::SEE_OTHER
        );
        let ids: Vec<String> = app
            .file_rows()
            .into_iter()
            .filter(|f| f.original_name.starts_with(&format!("r{round}-")))
            .map(|f| f.id.to_string())
            .collect();
        assert_eq!(ids.len(), 100);
        let doomed = app.add_user(&format!("yan{round}"), Role::User);
        let edits_before = crate::audit_log::events(&app)
            .iter()
            .filter(|e| e.event == "edit")
            .count();
        let token = staff.csrf_token("/admin/files").await;
        let readers = format!("paul yan{round}");
        let mut form = fields(&token, &ids, "/admin/files");
        form.push(("access", "users"));
        form.push(("readers", &readers));
        let delete_page = format!("/admin/users/{}/delete", doomed.id);
        let root_token = root.csrf_token(&delete_page).await;
        let (bulk, deleted) =
            tokio::join!(staff.post_form("/admin/files/bulk/access", &form), async {
                tokio::time::sleep(std::time::Duration::from_millis(2 * round)).await;
                root.post_form(
                    &delete_page,
                    &[("csrf_token", &root_token), ("reassign_to", "paul")],
                )
                .await
            });
        assert_eq!(deleted.status(), StatusCode::SEE_OTHER, "round {round}");
        let changed = app
            .file_rows()
            .into_iter()
            .filter(|f| ids.contains(&f.id.to_string()) && f.rule == AccessRule::Users)
            .count();
        if changed != 0 && changed != 100 {
            partial_before += 1;
        }
        assert!(
            changed == 0 || changed == 100,
            "round {round}: {changed} of 100 files changed (bulk answered {})",
            bulk.status()
        );
        let wanted = edits_before + changed;
        let edits = wait_for_events(&app, "edit", wanted).await.len();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let edits_after = crate::audit_log::events(&app)
            .iter()
            .filter(|e| e.event == "edit")
            .count();
        assert_eq!(
            edits, wanted,
            "round {round}: every changed file has its event"
        );
        assert_eq!(edits_after, wanted, "round {round}: and no more");
    }
    assert_eq!(partial_before, 0);
}
