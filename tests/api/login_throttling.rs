//! Login throttling as a site behind a proxy sees it: limits per name and per real client,
//! `X-Forwarded-For` believed only from `[server] trusted_proxies`.

use private_media::client_addr::TrustedProxies;
use private_media::domain::Role;
use reqwest::Response;

use crate::helpers::{Browser, PASSWORD, TestApp, csrf_token_in, spawn_app, spawn_app_with};

/// Logs in through "a proxy" that says the request came from `client`.
async fn login_from(app: &TestApp, client: &str, username: &str, password: &str) -> Response {
    let browser = Browser::new(&app.base);
    let page = browser
        .client
        .get(browser.url("/login"))
        .header("x-forwarded-for", client)
        .send()
        .await
        .expect("GET /login")
        .text()
        .await
        .expect("body");
    let token = csrf_token_in(&page).expect("a csrf token");
    browser
        .client
        .post(browser.url("/login"))
        .header("x-forwarded-for", client)
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .expect("POST /login")
}

async fn behind_a_trusted_proxy() -> TestApp {
    spawn_app_with(|s| {
        s.server.trusted_proxies = TrustedProxies::parse(&["127.0.0.1"]).expect("proxies");
    })
    .await
}

#[tokio::test]
async fn thirty_failures_from_one_client_behind_a_trusted_proxy_do_not_block_another_client() {
    let app = behind_a_trusted_proxy().await;
    app.add_user("bob", Role::User);
    for i in 0..30 {
        let response = login_from(&app, "198.51.100.7", &format!("guess{i}"), "wrong!").await;
        assert_eq!(response.status().as_u16(), 200, "attempt {i}");
    }
    // That client is blocked, for every name…
    let blocked = login_from(&app, "198.51.100.7", "bob", PASSWORD).await;
    assert_eq!(blocked.status().as_u16(), 429);
    // …and the next person behind the same proxy is not.
    let other = login_from(&app, "198.51.100.8", "bob", PASSWORD).await;
    assert_eq!(other.status().as_u16(), 303);
    // A client cannot escape by adding a made-up hop: the proxy's own entry is the one read.
    let spoofed = login_from(&app, "203.0.113.1, 198.51.100.7", "bob", PASSWORD).await;
    assert_eq!(spoofed.status().as_u16(), 429);
}

#[tokio::test]
async fn a_flood_of_wrong_passwords_for_one_name_never_blocks_other_names() {
    let app = behind_a_trusted_proxy().await;
    app.add_user("alice", Role::User);
    app.add_user("bob", Role::User);
    for i in 0..50 {
        let client = format!("198.51.100.{}", i % 10);
        let response = login_from(&app, &client, "alice", "wrong guess").await;
        let expected = if i < 5 { 200 } else { 429 };
        assert_eq!(response.status().as_u16(), expected, "attempt {i}");
    }
    // alice's own password is refused for now, before it is checked…
    let alice = login_from(&app, "198.51.100.1", "alice", PASSWORD).await;
    assert_eq!(alice.status().as_u16(), 429);
    // …while bob logs in from every one of those addresses and from elsewhere.
    for client in ["198.51.100.1", "198.51.100.9", "192.0.2.50"] {
        let bob = login_from(&app, client, "bob", PASSWORD).await;
        assert_eq!(bob.status().as_u16(), 303, "from {client}");
    }
}

#[tokio::test]
async fn guessing_one_name_from_one_address_does_not_block_that_address() {
    // The address limit counts names: 40 tries at alice from one office NAT, even unthrottled
    // by name, would be one name.
    let app = spawn_app().await;
    app.add_user("alice", Role::User);
    app.add_user("bob", Role::User);
    for _ in 0..40 {
        app.browser().login("alice", "wrong guess", None).await;
    }
    let bob = app.browser().login("bob", PASSWORD, None).await;
    assert_eq!(bob.status().as_u16(), 303);
}

#[tokio::test]
async fn x_forwarded_for_is_not_believed_without_trusted_proxies() {
    let app = spawn_app().await;
    app.add_user("bob", Role::User);
    for i in 0..30 {
        let response = login_from(&app, &format!("198.51.100.{i}"), &format!("n{i}"), "x!").await;
        assert_eq!(response.status().as_u16(), 200, "attempt {i}");
    }
    // Every attempt came from 127.0.0.1, whatever the header said.
    let blocked = login_from(&app, "192.0.2.1", "bob", PASSWORD).await;
    assert_eq!(blocked.status().as_u16(), 429);
}

#[tokio::test]
async fn a_successful_login_clears_the_names_failures() {
    let app = spawn_app().await;
    app.add_user("alice", Role::User);
    for _ in 0..4 {
        app.browser().login("alice", "wrong guess", None).await;
    }
    let ok = app.browser().login("alice", PASSWORD, None).await;
    assert_eq!(ok.status().as_u16(), 303);
    for _ in 0..4 {
        let response = app.browser().login("alice", "wrong guess", None).await;
        assert_eq!(response.status().as_u16(), 200);
    }
    let ok = app.browser().login("alice", PASSWORD, None).await;
    assert_eq!(ok.status().as_u16(), 303);
}

#[tokio::test]
async fn forty_wrong_passwords_at_once_get_no_more_than_the_limit_checked() {
    let app = spawn_app().await;
    app.add_user("alice", Role::User);
    // Every attempt has its form ready first, then all are sent at once.
    let mut ready = Vec::new();
    for _ in 0..40 {
        let browser = Browser::new(&app.base);
        let token = browser.csrf_token("/login").await;
        ready.push((browser, token));
    }
    let attempts = ready.iter().map(|(browser, token)| {
        browser.client.post(browser.url("/login")).form(&[
            ("csrf_token", token.as_str()),
            ("username", "alice"),
            ("password", "wrong password!"),
        ])
    });
    let statuses: Vec<u16> = futures_util::future::join_all(attempts.map(|a| a.send()))
        .await
        .into_iter()
        .map(|r| r.expect("POST /login").status().as_u16())
        .collect();
    let checked = statuses.iter().filter(|s| **s != 429).count();
    assert!(
        checked <= 5,
        "{checked} passwords were checked: {statuses:?}"
    );
    // And now even the right password waits.
    assert_eq!(
        login_from(&app, "10.9.9.9", "alice", PASSWORD)
            .await
            .status(),
        429
    );
}

fn failure_rows(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use private_media::db::schema::login_failures;
    let mut conn = app.db.get().expect("connection");
    login_failures::table
        .count()
        .get_result(&mut *conn)
        .expect("count")
}

/// A flood of refused attempts costs the database reads only: nothing is written for them,
/// so neither the table nor SQLite's WAL grows with the attack.
#[tokio::test]
async fn attempts_refused_after_the_limit_add_no_rows() {
    let app = spawn_app().await;
    app.add_user("alice", Role::User);
    for i in 0..5 {
        let response = app.browser().login("alice", "wrong guess", None).await;
        assert_eq!(response.status().as_u16(), 200, "attempt {i}");
    }
    let rows = failure_rows(&app);
    assert_eq!(rows, 5);
    for i in 0..20 {
        let response = app.browser().login("alice", "wrong guess", None).await;
        assert_eq!(response.status().as_u16(), 429, "attempt {i}");
    }
    assert_eq!(failure_rows(&app), rows, "refused attempts were recorded");
    // The right password is still refused: the five failures are still in the window.
    let ok = app.browser().login("alice", PASSWORD, None).await;
    assert_eq!(ok.status().as_u16(), 429);
    assert_eq!(failure_rows(&app), rows);
}
