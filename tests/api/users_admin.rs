//! `/admin/users`: superusers create users, change roles and active state, set passwords.

use private_media::db::models::user::User;
use private_media::domain::{Role, Username};
use reqwest::StatusCode;

use crate::helpers::{PASSWORD, TestApp, location, spawn_app};

fn find(app: &TestApp, name: &str) -> Option<User> {
    let mut conn = app.db.get().expect("connection");
    User::find_by_username(&mut conn, &Username::parse(name).expect("name")).expect("query")
}

#[tokio::test]
async fn a_superuser_creates_a_user_who_can_then_log_in() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let token = root.csrf_token("/admin/users").await;
    let response = root
        .post_form(
            "/admin/users",
            &[
                ("csrf_token", &token),
                ("username", "newbie"),
                ("password", "a fine new password"),
                ("role", "staff"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/admin/users");
    let page = root.get_text("/admin/users").await;
    assert!(page.contains("Created staff “newbie”."), "{page}");
    assert!(page.contains("newbie"));
    assert_eq!(find(&app, "newbie").expect("created").role(), Role::Staff);

    let newbie = app.browser();
    let login = newbie.login("newbie", "a fine new password", None).await;
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    assert_eq!(newbie.get("/admin/files").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn only_superusers_reach_the_user_admin() {
    let app = spawn_app().await;
    let target = app.add_user("target", Role::User);
    for (name, role) in [("staffer", Role::Staff), ("plain", Role::User)] {
        let browser = app.logged_in(name, role).await;
        assert_eq!(
            browser.get("/admin/users").await.status(),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            browser
                .get(&format!("/admin/users/{}", target.id))
                .await
                .status(),
            StatusCode::FORBIDDEN
        );
        let token = browser.csrf_token("/files").await;
        let response = browser
            .post_form(
                "/admin/users",
                &[
                    ("csrf_token", &token),
                    ("username", "sneaky"),
                    ("password", "a fine new password"),
                    ("role", "superuser"),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        let response = browser
            .post_form(
                &format!("/admin/users/{}", target.id),
                &[
                    ("csrf_token", &token),
                    ("role", "superuser"),
                    ("active", "1"),
                ],
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert!(find(&app, "sneaky").is_none());
    assert_eq!(find(&app, "target").expect("target").role(), Role::User);
    let anonymous = app.browser();
    let response = anonymous.get("/admin/users").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login?next="));
}

#[tokio::test]
async fn bad_input_gets_a_clear_message_and_creates_nothing() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    app.add_user("taken", Role::User);
    let token = root.csrf_token("/admin/users").await;
    for (username, password, message) in [
        (
            "taken",
            "a fine new password",
            "A user named “taken” exists.",
        ),
        ("short", "1234567", "id=\"password-error\""),
        ("bad name!", "a fine new password", "id=\"username-error\""),
        ("", "a fine new password", "id=\"username-error\""),
    ] {
        let response = root
            .post_form(
                "/admin/users",
                &[
                    ("csrf_token", &token),
                    ("username", username),
                    ("password", password),
                    ("role", "user"),
                ],
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{username}"
        );
        let page = response.text().await.expect("page");
        assert!(page.contains(message), "{username}: {page}");
    }
    assert!(find(&app, "short").is_none());
    // Without the CSRF token: refused before anything else.
    let response = root
        .post_form(
            "/admin/users",
            &[
                ("username", "nocsrf"),
                ("password", "a fine new password"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(find(&app, "nocsrf").is_none());
}

#[tokio::test]
async fn roles_change_and_deactivation_ends_the_users_sessions() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let alice_browser = app.logged_in("alice", Role::User).await;
    let alice = find(&app, "alice").expect("alice");
    let url = format!("/admin/users/{}", alice.id);
    let token = root.csrf_token(&url).await;

    let response = root
        .post_form(
            &url,
            &[("csrf_token", &token), ("role", "staff"), ("active", "1")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(find(&app, "alice").expect("alice").role(), Role::Staff);
    assert_eq!(
        alice_browser.get("/admin/files").await.status(),
        StatusCode::OK
    );
    let page = root.get_text(&url).await;
    assert!(page.contains("“alice” is now staff and active."), "{page}");

    // No `active` field: the box was unticked.
    let response = root
        .post_form(&url, &[("csrf_token", &token), ("role", "staff")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(!find(&app, "alice").expect("alice").is_active);
    assert_eq!(
        alice_browser.get("/files").await.status(),
        StatusCode::SEE_OTHER,
        "the session ended"
    );
    let again = app.browser().login("alice", PASSWORD, None).await;
    assert_eq!(
        again.status().as_u16(),
        200,
        "an inactive user cannot log in"
    );
}

#[tokio::test]
async fn a_superuser_cannot_demote_or_deactivate_themselves() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let me = find(&app, "root").expect("root");
    let url = format!("/admin/users/{}", me.id);
    let page = root.get_text(&url).await;
    assert!(page.contains("This is you"), "{page}");
    let token = root.csrf_token(&url).await;
    for fields in [
        vec![("role", "staff"), ("active", "1")],
        vec![("role", "superuser")],
    ] {
        let mut form = vec![("csrf_token", token.as_str())];
        form.extend(fields);
        let response = root.post_form(&url, &form).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let page = response.text().await.expect("page");
        assert!(
            page.contains("cannot take away your own superuser role"),
            "{page}"
        );
    }
    let me = find(&app, "root").expect("root");
    assert_eq!(me.role(), Role::Superuser);
    assert!(me.is_active);
    assert_eq!(root.get("/admin/users").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn setting_a_password_ends_the_users_sessions() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let bob_browser = app.logged_in("bob", Role::User).await;
    let bob = find(&app, "bob").expect("bob");
    let url = format!("/admin/users/{}", bob.id);
    let token = root.csrf_token(&url).await;

    let short = root
        .post_form(
            &format!("{url}/password"),
            &[("csrf_token", &token), ("password", "short")],
        )
        .await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bob_browser.get("/files").await.status(), StatusCode::OK);

    let response = root
        .post_form(
            &format!("{url}/password"),
            &[("csrf_token", &token), ("password", "bobs new password")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        bob_browser.get("/files").await.status(),
        StatusCode::SEE_OTHER
    );
    let old = app.browser().login("bob", PASSWORD, None).await;
    assert_eq!(old.status().as_u16(), 200);
    let new = app.browser().login("bob", "bobs new password", None).await;
    assert_eq!(new.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        root.get("/admin/users/00000000000000000000000000000000")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

/// Two superusers demoting each other at the same moment: one of them stays a superuser
/// (both used to succeed, leaving nobody to manage users from the web).
#[tokio::test]
async fn two_superusers_demoting_each_other_leave_one_superuser() {
    let app = spawn_app().await;
    let ann = app.logged_in("ann", Role::Superuser).await;
    let bob = app.logged_in("bob", Role::Superuser).await;
    let page_of = |name: &str| format!("/admin/users/{}", find(&app, name).expect("user").id);
    let (bobs_page, anns_page) = (page_of("bob"), page_of("ann"));
    let ann_token = ann.csrf_token(&bobs_page).await;
    let bob_token = bob.csrf_token(&anns_page).await;
    let demote = |token: &str| {
        vec![
            ("csrf_token", token.to_owned()),
            ("role", "user".to_owned()),
            ("active", "on".to_owned()),
        ]
    };
    let (ann_form, bob_form) = (demote(&ann_token), demote(&bob_token));
    let ann_fields: Vec<(&str, &str)> = ann_form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bob_fields: Vec<(&str, &str)> = bob_form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for round in 0..40u64 {
        let (a, b) = tokio::join!(ann.post_form(&bobs_page, &ann_fields), async {
            if round % 2 == 1 {
                tokio::task::yield_now().await;
            }
            bob.post_form(&anns_page, &bob_fields).await
        });
        let left = {
            let mut conn = app.db.get().expect("connection");
            User::count_active_superusers(&mut conn).expect("count")
        };
        assert_eq!(
            left,
            1,
            "round {round}: answers {} and {}",
            a.status(),
            b.status()
        );
        // The other is refused: 422 (the last superuser) or 403 (no longer one).
        let done = [a.status(), b.status()]
            .into_iter()
            .filter(|s| *s == StatusCode::SEE_OTHER)
            .count();
        assert_eq!(done, 1, "round {round}: one of the two is done");
        // Both superusers again for the next round.
        let mut conn = app.db.get().expect("connection");
        for name in ["ann", "bob"] {
            let name = Username::parse(name).expect("name");
            User::set_role(&mut conn, &name, Role::Superuser).expect("restore");
        }
    }
}

/// The last active superuser cannot be demoted or deactivated, from the web or the command
/// line; with another superuser, both can.
#[tokio::test]
async fn the_last_superuser_keeps_the_role() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let output = app.cli(&["user", "set-role", "root", "staff"], None);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("last active superuser"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let output = app.cli(&["user", "deactivate", "root"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        root.get("/admin/users").await.status().is_success(),
        "root is still a superuser"
    );
    app.add_user("second", Role::Superuser);
    let output = app.cli(&["user", "set-role", "root", "staff"], None);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = app.cli(&["user", "deactivate", "second"], None);
    assert_eq!(output.status.code(), Some(1), "second is now the last one");
}
