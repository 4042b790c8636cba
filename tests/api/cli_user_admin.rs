//! The user commands added for parity with the web: `user set-role`, `user delete
//! [--reassign-to]`, `user list --format json`; each change recorded with the route `cli`.

use private_media::db::models::user::User;
use private_media::domain::{Role, Username};

use crate::audit_log::events;
use crate::helpers::{TestApp, spawn_app, text, upload_file};

fn find(app: &TestApp, name: &str) -> Option<User> {
    let mut conn = app.db.get().expect("connection");
    User::find_by_username(&mut conn, &Username::parse(name).expect("name")).expect("query")
}

fn assert_one_clear_line(stderr: &str) {
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
}

#[tokio::test]
async fn set_role_changes_the_role_and_is_recorded() {
    let app = spawn_app().await;
    app.add_user("paul", Role::User);
    // Not the last superuser once paul is one (that one keeps the role: users_admin.rs).
    app.add_user("root", Role::Superuser);
    let browser = app.logged_in("stella", Role::Staff).await;
    for (role, expected) in [
        ("staff", Role::Staff),
        ("superuser", Role::Superuser),
        ("user", Role::User),
    ] {
        let output = app.cli(&["user", "set-role", "paul", role], None);
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(
            text(&output.stdout).contains(&format!("`paul` is now {role}")),
            "{}",
            text(&output.stdout)
        );
        assert_eq!(find(&app, "paul").expect("paul").role(), expected);
    }
    // A role taken away works at once on the web, in a session that is already open.
    assert_eq!(browser.get("/admin/files").await.status().as_u16(), 200);
    let output = app.cli(&["user", "set-role", "stella", "user"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(browser.get("/admin/files").await.status().as_u16(), 403);
    assert_eq!(browser.get("/files").await.status().as_u16(), 200);

    let changes: Vec<_> = events(&app)
        .into_iter()
        .filter(|e| e.event == "user_changed")
        .collect();
    assert_eq!(changes.len(), 4);
    assert!(changes.iter().all(|e| e.route.as_deref() == Some("cli")));
    let detail = changes[0].detail.clone().unwrap_or_default();
    assert!(detail.contains("“paul”: role user → staff"), "{detail}");
}

#[tokio::test]
async fn set_role_refuses_unknown_roles_and_users() {
    let app = spawn_app().await;
    app.add_user("paul", Role::User);
    let bad_role = app.cli(&["user", "set-role", "paul", "admin"], None);
    assert_eq!(bad_role.status.code(), Some(2), "clap's usage error");
    assert!(
        text(&bad_role.stderr).contains("not a role (user, staff or superuser)"),
        "{}",
        text(&bad_role.stderr)
    );
    let nobody = app.cli(&["user", "set-role", "nobody", "staff"], None);
    assert_eq!(nobody.status.code(), Some(1));
    assert_one_clear_line(&text(&nobody.stderr));
    assert!(text(&nobody.stderr).contains("no user named"));
    assert_eq!(find(&app, "paul").expect("paul").role(), Role::User);
}

#[tokio::test]
async fn delete_reassigns_files_or_is_refused_while_they_own_some() {
    let app = spawn_app().await;
    let stella = app.logged_in("stella", Role::Staff).await;
    app.add_user("heir", Role::Staff);
    let file = upload_file(&app, &stella, "own.txt", b"mine", "owner", None, &[]).await;

    let refused = app.cli(&["user", "delete", "stella"], None);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("owns 1 file"), "{stderr}");
    assert!(find(&app, "stella").is_some());

    let unknown_heir = app.cli(
        &["user", "delete", "stella", "--reassign-to", "nobody"],
        None,
    );
    assert_eq!(unknown_heir.status.code(), Some(1));
    assert!(text(&unknown_heir.stderr).contains("no active user named `nobody`"));
    assert!(find(&app, "stella").is_some());

    let done = app.cli(&["user", "delete", "stella", "--reassign-to", "heir"], None);
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert!(
        text(&done.stdout).contains("1 file(s) now belong to `heir`"),
        "{}",
        text(&done.stdout)
    );
    assert!(find(&app, "stella").is_none());
    let row = app.file_rows().remove(0);
    assert_eq!(row.id, file.id);
    assert_eq!(row.owner_id, find(&app, "heir").expect("heir").id);
    // Her open session ended with the account.
    assert_eq!(stella.get("/admin/files").await.status().as_u16(), 303);

    let deleted: Vec<_> = events(&app)
        .into_iter()
        .filter(|e| e.event == "user_deleted")
        .collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].route.as_deref(), Some("cli"));
    let detail = deleted[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains("“stella”") && detail.contains("“heir”"),
        "{detail}"
    );

    let again = app.cli(&["user", "delete", "stella"], None);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("no user named `stella`"));
}

#[tokio::test]
async fn the_last_active_superuser_is_never_deleted() {
    let app = spawn_app().await;
    app.add_user("root", Role::Superuser);
    app.add_user("other", Role::Superuser);
    app.cli(&["user", "deactivate", "other"], None);
    let refused = app.cli(&["user", "delete", "root"], None);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert_one_clear_line(&stderr);
    assert!(stderr.contains("last active superuser"), "{stderr}");
    assert!(find(&app, "root").is_some());
    // With another active superuser it may go; an inactive one may go any time.
    app.cli(&["user", "activate", "other"], None);
    let done = app.cli(&["user", "delete", "root"], None);
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert!(find(&app, "root").is_none());
}

#[tokio::test]
async fn list_prints_json_for_scripts_and_a_table_by_default() {
    let app = spawn_app().await;
    app.add_user("paul", Role::User);
    app.add_user("root", Role::Superuser);
    app.cli(&["user", "deactivate", "paul"], None);
    let browser = app.browser();
    browser.login("root", crate::helpers::PASSWORD, None).await;

    let json = app.cli(&["user", "list", "--format", "json"], None);
    assert!(json.status.success(), "{}", text(&json.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let users = listed.as_array().expect("an array");
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["username"], "paul");
    assert_eq!(users[0]["role"], "user");
    assert_eq!(users[0]["active"], false);
    assert!(users[0]["last_login_at"].is_null());
    assert_eq!(users[1]["username"], "root");
    assert_eq!(users[1]["role"], "superuser");
    assert_eq!(users[1]["active"], true);
    let last = users[1]["last_login_at"].as_str().expect("a login time");
    assert!(
        chrono::DateTime::parse_from_rfc3339(last).is_ok(),
        "{last} is not RFC 3339"
    );
    assert!(
        chrono::DateTime::parse_from_rfc3339(users[0]["created_at"].as_str().expect("created"))
            .is_ok()
    );

    for args in [
        &["user", "list"][..],
        &["user", "list", "--format", "text"][..],
    ] {
        let table = app.cli(args, None);
        assert!(table.status.success());
        let out = text(&table.stdout);
        assert!(out.starts_with("USERNAME"), "{out}");
        assert!(out.contains("paul") && out.contains("no"), "{out}");
    }
    let bad = app.cli(&["user", "list", "--format", "xml"], None);
    assert_eq!(bad.status.code(), Some(2));
}
