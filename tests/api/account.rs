//! `/account`: every user sees their own details and changes their own password (the current
//! one required, throttled like logins, other sessions ended, this one renewed, recorded).

use private_media::domain::Role;
use reqwest::StatusCode;

use crate::audit_log::{events, wait_for_events};
use crate::helpers::{Browser, PASSWORD, location, spawn_app};

const NEW_PASSWORD: &str = "a much better passphrase";

async fn change(browser: &Browser, current: &str, new: &str, again: &str) -> reqwest::Response {
    let token = browser.csrf_token("/account").await;
    browser
        .post_form(
            "/account/password",
            &[
                ("csrf_token", &token),
                ("current_password", current),
                ("new_password", new),
                ("new_password_again", again),
            ],
        )
        .await
}

#[tokio::test]
async fn every_logged_in_user_sees_their_own_details() {
    let app = spawn_app().await;
    for (name, role, words) in [
        ("paul", Role::User, "user"),
        ("stella", Role::Staff, "staff"),
        ("root", Role::Superuser, "superuser"),
    ] {
        let browser = app.logged_in(name, role).await;
        let response = browser.get("/account").await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        assert_eq!(
            response.headers()["cache-control"],
            "no-store",
            "the account page may be kept"
        );
        let page = response.text().await.expect("page");
        assert!(page.contains(&format!("<td>{name}</td>")), "{page}");
        assert!(page.contains(&format!("<td>{words} ")), "{name}: {page}");
        assert!(page.contains("Change your password"), "{page}");
        // Its nav link is marked as the current page.
        assert!(
            page.contains(r#"href="/account" title="Your account" aria-current="page""#),
            "{page}"
        );
    }
    let anonymous = app.browser().get("/account").await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&anonymous), "/login?next=%2Faccount");
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_renews_this_one() {
    let app = spawn_app().await;
    let here = app.logged_in("paul", Role::User).await;
    let elsewhere = app.browser();
    assert_eq!(
        elsewhere.login("paul", PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER
    );
    let cookie_before = here.cookie_header();
    let token_before = here.csrf_token("/account").await;

    let response = change(&here, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/account");

    // This browser stays in, with a fresh session and token.
    let page = here.get("/account").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.expect("page");
    assert!(page.contains("Your password was changed."), "{page}");
    assert_ne!(here.csrf_token("/account").await, token_before);
    assert_ne!(here.cookie_header(), cookie_before);
    // The other browser, and a copy of the old cookie, are out at once.
    assert_eq!(
        elsewhere.get("/files").await.status(),
        StatusCode::SEE_OTHER
    );
    let copy = Browser::new(&app.base);
    copy.client
        .get(copy.url("/files"))
        .header("cookie", &cookie_before)
        .send()
        .await
        .map(|r| {
            assert_eq!(
                r.status(),
                StatusCode::SEE_OTHER,
                "the old cookie still works"
            )
        })
        .expect("GET");
    // The new password logs in, the old one no longer does.
    assert_eq!(
        location(&app.browser().login("paul", NEW_PASSWORD, None).await),
        "/files"
    );
    let old = app.browser().login("paul", PASSWORD, None).await;
    assert_eq!(
        old.status(),
        StatusCode::OK,
        "the old password still logs in"
    );

    let recorded = wait_for_events(&app, "password_changed", 1).await;
    assert_eq!(recorded.len(), 1, "the change was not recorded");
    assert_eq!(recorded[0].username.as_deref(), Some("paul"));
    assert!(
        !recorded[0]
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains(NEW_PASSWORD)
    );
}

#[tokio::test]
async fn a_wrong_current_password_is_a_field_error_and_changes_nothing() {
    let app = spawn_app().await;
    let paul = app.logged_in("paul", Role::User).await;
    let response = change(&paul, "not my password", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.expect("page");
    assert!(
        page.contains(r#"aria-invalid="true" aria-describedby="current_password-error""#),
        "{page}"
    );
    assert!(
        page.contains(r#"id="current_password-error">That is not your current password."#),
        "{page}"
    );
    // Still logged in, the password unchanged.
    assert_eq!(paul.get("/account").await.status(), StatusCode::OK);
    assert_eq!(
        app.browser().login("paul", PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER
    );
    let failures = wait_for_events(&app, "login_failed", 1).await;
    assert_eq!(failures.len(), 1, "the wrong password was not recorded");
    // Written in order: the login above is recorded after the refusal.
    wait_for_events(&app, "login", 2).await;
    assert!(!events(&app).iter().any(|e| e.event == "password_changed"));
}

#[tokio::test]
async fn a_bad_new_password_is_shown_beside_its_field_and_costs_no_attempt() {
    let app = spawn_app().await;
    let paul = app.logged_in("paul", Role::User).await;
    for (new, again, field, message) in [
        ("short", "short", "new_password", "at least 8 characters"),
        (
            NEW_PASSWORD,
            "something else entirely",
            "new_password_again",
            "differ",
        ),
    ] {
        let response = change(&paul, PASSWORD, new, again).await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}"
        );
        let page = response.text().await.expect("page");
        assert!(
            page.contains(&format!(
                r#"aria-invalid="true" aria-describedby="{field}-error""#
            )),
            "{field}: {page}"
        );
        assert!(page.contains(message), "{field}: {page}");
        assert!(
            !page.contains("current_password-error"),
            "{field}: the current password was blamed"
        );
    }
    let empty = change(&paul, "", NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty
            .text()
            .await
            .expect("page")
            .contains("Enter your current password.")
    );
    // None of these reached the throttle or changed anything.
    assert_eq!(
        app.browser().login("paul", PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(wait_for_events(&app, "login", 2).await.len(), 2);
    assert!(!events(&app).iter().any(|e| e.event == "login_failed"));
}

#[tokio::test]
async fn guessing_the_current_password_is_throttled_like_logins() {
    let app = spawn_app().await;
    let paul = app.logged_in("paul", Role::User).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let response = change(&paul, "a wrong guess", NEW_PASSWORD, NEW_PASSWORD).await;
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(response.headers().contains_key("retry-after"));
            let page = response.text().await.expect("page");
            assert!(page.contains("Too many wrong passwords"), "{page}");
            break;
        }
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "never throttled: {statuses:?}"
    );
    // Even the right password waits now: no guessing run gets around the limit.
    let right = change(&paul, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    // And the login form counts the same failures.
    let login = app.browser().login("paul", PASSWORD, None).await;
    assert_eq!(login.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn the_password_change_needs_a_csrf_token() {
    let app = spawn_app().await;
    let paul = app.logged_in("paul", Role::User).await;
    let response = paul
        .post_form(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("new_password_again", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.browser().login("paul", PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER,
        "the password changed without a token"
    );
    let anonymous = app.browser();
    let token = anonymous.csrf_token("/login").await;
    let response = anonymous
        .post_form(
            "/account/password",
            &[
                ("csrf_token", &token),
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
                ("new_password_again", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(location(&response).starts_with("/login"));
}
