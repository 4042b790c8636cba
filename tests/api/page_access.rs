//! Who reaches which page: anonymous visitors are sent to the login with `next`, plain users
//! get 403 on the admin, staff and superusers reach it, and `/files` shows who is logged in.

use private_media::domain::Role;

use crate::helpers::{location, spawn_app};

#[tokio::test]
async fn anonymous_requests_are_sent_to_login_with_next() {
    let app = spawn_app().await;
    let browser = app.browser();
    for (path, expected) in [
        ("/files", "/login?next=%2Ffiles"),
        ("/admin/", "/login?next=%2Fadmin%2F"),
        ("/files?q=a%20b", "/login?next=%2Ffiles%3Fq%3Da%2520b"),
    ] {
        let response = browser.get(path).await;
        assert_eq!(response.status().as_u16(), 303, "{path}");
        assert_eq!(location(&response), expected, "{path}");
    }
}

#[tokio::test]
async fn a_plain_user_gets_403_on_the_admin() {
    let app = spawn_app().await;
    let browser = app.logged_in("alice", Role::User).await;
    let response = browser.get("/admin/").await;
    assert_eq!(response.status().as_u16(), 403);
    let page = response.text().await.unwrap();
    assert!(page.contains("permission"), "{page}");
    assert_eq!(browser.get("/files").await.status().as_u16(), 200);
}

#[tokio::test]
async fn staff_and_superusers_reach_the_admin() {
    let app = spawn_app().await;
    for (name, role) in [("stella", Role::Staff), ("root", Role::Superuser)] {
        let browser = app.logged_in(name, role).await;
        let response = browser.get("/admin/").await;
        assert_eq!(response.status().as_u16(), 200, "{name}");
        let page = response.text().await.unwrap();
        assert!(page.contains("Administration"), "{page}");
    }
}

#[tokio::test]
async fn the_files_page_shows_the_user_and_a_logout_form() {
    let app = spawn_app().await;
    let browser = app.logged_in("alice", Role::User).await;
    let page = browser.get_text("/files").await;
    assert!(page.contains("alice"), "{page}");
    assert!(page.contains(r#"action="/logout""#), "{page}");
    assert!(
        !page.contains(r#"href="/admin/""#),
        "plain users see no admin link"
    );
    let staff = app.logged_in("stella", Role::Staff).await;
    assert!(staff.get_text("/files").await.contains(r#"href="/admin/""#));
}
