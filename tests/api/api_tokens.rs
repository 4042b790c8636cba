//! API tokens (README: "Scripting"): only a Bearer token opens the API (never a cookie), a
//! token stops working when it expires, is revoked or its user is deactivated or deleted, bad
//! tokens are throttled, no token reaches the logs, and tokens are made and revoked at
//! /account/tokens (shown once, CSRF) and from the command line.

use std::cell::RefCell;
use std::time::Duration;

use chrono::Utc;
use diesel::prelude::*;
use private_media::db::models::api_token::TokenRow;
use private_media::db::models::user::User;
use private_media::db::schema::api_tokens;
use private_media::domain::{Role, Username};
use reqwest::{Method, StatusCode};

use crate::audit_log::wait_for_events;
use crate::helpers::{Browser, TestApp, cli_command, location, serve, spawn_app, text};
use crate::json_api::{Api, error_of, token_for};

/// The `WWW-Authenticate` of a 401 under /api/, checked to be JSON too.
async fn refused(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response
        .headers()
        .get("www-authenticate")
        .expect("WWW-Authenticate")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    error_of(response).await;
    challenge
}

fn tokens_of(app: &TestApp, user: &User) -> Vec<TokenRow> {
    let mut conn = app.db.get().unwrap();
    TokenRow::list(&mut conn, Some(&user.id))
        .unwrap()
        .into_iter()
        .map(|t| t.token)
        .collect()
}

#[tokio::test]
async fn a_missing_bad_expired_or_revoked_token_or_a_deactivated_user_gets_401() {
    let app = spawn_app().await;
    let bob = app.add_user("bob", Role::User);
    let good = token_for(&app, &bob);
    assert_eq!(
        Api::new(&app, &good).get("/api/v1/files").await.status(),
        StatusCode::OK
    );

    let missing = reqwest::get(format!("{}/api/v1/files", app.base))
        .await
        .unwrap();
    let challenge = refused(missing).await;
    assert!(!challenge.contains("invalid_token"), "{challenge}");
    let basic = reqwest::Client::new()
        .get(format!("{}/api/v1/files", app.base))
        .basic_auth("bob", Some("password"))
        .send()
        .await
        .unwrap();
    refused(basic).await;

    for bad in [
        "nonsense",
        "pm_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &format!("{good}x"),
    ] {
        let challenge = refused(Api::new(&app, bad).get("/api/v1/files").await).await;
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }

    // Expired: its expiry moved into the past.
    let expiring = token_for(&app, &bob);
    let id = tokens_of(&app, &bob)
        .into_iter()
        .find(|t| t.last_used_at.is_none())
        .unwrap()
        .id;
    diesel::update(api_tokens::table.filter(api_tokens::id.eq(&id)))
        .set(api_tokens::expires_at.eq(Some(Utc::now().naive_utc() - chrono::Duration::hours(1))))
        .execute(&mut app.db.get().unwrap())
        .unwrap();
    let challenge = refused(Api::new(&app, &expiring).get("/api/v1/files").await).await;
    assert!(challenge.contains("expired"), "{challenge}");

    // Revoked.
    let revoking = token_for(&app, &bob);
    let digest = private_media::domain::ApiToken::digest_of(&revoking);
    diesel::update(api_tokens::table.filter(api_tokens::token_sha256.eq(&digest)))
        .set(api_tokens::revoked_at.eq(Some(Utc::now().naive_utc())))
        .execute(&mut app.db.get().unwrap())
        .unwrap();
    let challenge = refused(Api::new(&app, &revoking).get("/api/v1/files").await).await;
    assert!(challenge.contains("revoked"), "{challenge}");

    // Deactivated: the good token stops, and works again when the user is back.
    let name = Username::parse("bob").unwrap();
    User::set_active(&mut app.db.get().unwrap(), &name, false).unwrap();
    let challenge = refused(Api::new(&app, &good).get("/api/v1/files").await).await;
    assert!(challenge.contains("deactivated"), "{challenge}");
    User::set_active(&mut app.db.get().unwrap(), &name, true).unwrap();
    assert_eq!(
        Api::new(&app, &good).get("/api/v1/files").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_session_cookie_alone_opens_nothing_under_the_api() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    assert_eq!(staff.get("/admin/files").await.status(), StatusCode::OK);
    refused(staff.get("/api/v1/files").await).await;
    // A POST and a DELETE with the cookie: 401 (not the CSRF refusal: no session counts here).
    let token = staff.csrf_token("/admin/files/new").await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", token.clone())
        .text("access", "staff")
        .part(
            "file",
            reqwest::multipart::Part::bytes(b"x".to_vec()).file_name("x.txt"),
        );
    let post = staff
        .client
        .post(staff.url("/api/v1/files"))
        .header("x-csrf-token", &token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    refused(post).await;
    let delete = staff
        .client
        .delete(staff.url("/api/v1/files/0123456789abcdef0123456789abcdef"))
        .send()
        .await
        .unwrap();
    refused(delete).await;
    assert!(app.file_rows().is_empty());
    // A token and a cookie: the token decides, and no cookie is set in return.
    let bob = app.add_user("bob", Role::User);
    let with_both = staff
        .client
        .get(staff.url("/api/v1/files"))
        .bearer_auth(token_for(&app, &bob))
        .send()
        .await
        .unwrap();
    assert_eq!(with_both.status(), StatusCode::OK);
    assert!(!with_both.headers().contains_key("set-cookie"));
}

#[tokio::test]
async fn a_token_has_its_users_rights_and_last_used_is_written_at_most_once_a_minute() {
    let app = spawn_app().await;
    let bob = app.add_user("bob", Role::User);
    let token = token_for(&app, &bob);
    let api = Api::new(&app, &token);
    assert_eq!(tokens_of(&app, &bob)[0].last_used_at, None);
    assert_eq!(api.get("/api/v1/files").await.status(), StatusCode::OK);
    let first = tokens_of(&app, &bob)[0].last_used_at.expect("last used");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(api.get("/api/v1/files").await.status(), StatusCode::OK);
    assert_eq!(tokens_of(&app, &bob)[0].last_used_at, Some(first));
    // A plain user's token uploads nothing.
    let upload = api
        .request(Method::POST, "/api/v1/files")
        .multipart(reqwest::multipart::Form::new().text("access", "owner"))
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn repeated_bad_tokens_are_throttled_with_429_and_retry_after() {
    let app = spawn_app().await;
    let bob = app.add_user("bob", Role::User);
    let bad = Api::new(&app, "pm_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB");
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let response = bad.get("/api/v1/files").await;
        statuses.push(response.status().as_u16());
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let wait: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(wait > 0 && wait <= 15 * 60, "{wait}");
            error_of(response).await;
        }
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429, 429], "{statuses:?}");
    // Someone else's good token from the same address still works.
    let good = Api::new(&app, &token_for(&app, &bob));
    assert_eq!(good.get("/api/v1/files").await.status(), StatusCode::OK);

    // Many different bad tokens from one address: the next bad one is refused with 429, but
    // a good token from there is still served (a neighbour behind the same address cannot
    // lock its holder out).
    for i in 0..20 {
        let response = Api::new(&app, &format!("guess-{i}"))
            .get("/api/v1/files")
            .await;
        assert!(
            matches!(response.status().as_u16(), 401 | 429),
            "{}",
            response.status()
        );
    }
    let blocked = Api::new(&app, "guess-next").get("/api/v1/files").await;
    assert_eq!(blocked.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(blocked.headers().contains_key("retry-after"));
    assert_eq!(good.get("/api/v1/files").await.status(), StatusCode::OK);
    // Throttled downloads are not recorded: a flood of them cannot fill the audit log.
    let throttled = Api::new(&app, "guess-download")
        .get("/api/v1/files/00000000000000000000000000000000/download")
        .await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    let refused = Api::new(&app, "guess-download-2")
        .get("/api/v1/files/00000000000000000000000000000000/download")
        .await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let marker = bad
        .get("/api/v1/files/00000000000000000000000000000001/download")
        .await;
    assert_eq!(marker.status(), StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let recorded_429 = crate::audit_log::events(&app)
        .into_iter()
        .filter(|e| e.status == Some(429))
        .count();
    assert_eq!(recorded_429, 0);
}

#[tokio::test]
async fn deleting_a_user_removes_their_tokens() {
    let app = spawn_app().await;
    let bob = app.add_user("bob", Role::User);
    let token = token_for(&app, &bob);
    let name = Username::parse("bob").unwrap();
    private_media::db::models::user_removal::delete(&mut app.db.get().unwrap(), &name, None)
        .unwrap();
    let left: i64 = api_tokens::table
        .count()
        .get_result(&mut app.db.get().unwrap())
        .unwrap();
    assert_eq!(left, 0);
    refused(Api::new(&app, &token).get("/api/v1/files").await).await;
}

#[tokio::test]
async fn a_user_makes_a_token_at_account_tokens_sees_it_once_and_revokes_it_with_csrf() {
    let app = spawn_app().await;
    let bob = app.logged_in("bob", Role::User).await;
    assert!(
        bob.get_text("/account")
            .await
            .contains("href=\"/account/tokens\"")
    );
    let csrf = bob.csrf_token("/account/tokens").await;
    let made = bob
        .post_form(
            "/account/tokens",
            &[
                ("csrf_token", &csrf),
                ("name", "backup script"),
                ("expires", "30d"),
            ],
        )
        .await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&made), "/account/tokens");
    let page = bob.get_text("/account/tokens").await;
    let marker = "id=\"new-token\" type=\"text\" readonly value=\"";
    let start = page.find(marker).expect("the new token on the page") + marker.len();
    let token = page[start..start + 46].to_owned();
    assert!(token.starts_with("pm_"), "{token}");
    assert!(page.contains("backup script"));
    assert!(page.contains("active"));
    // Shown once: the next visit has the list, not the token.
    let again = bob.get_text("/account/tokens").await;
    assert!(!again.contains(&token));
    assert!(again.contains("backup script"));
    // Nothing but its digest is stored.
    let stored: Vec<String> = api_tokens::table
        .select(api_tokens::token_sha256)
        .load(&mut app.db.get().unwrap())
        .unwrap();
    assert_eq!(stored, [private_media::domain::ApiToken::digest_of(&token)]);
    let api = Api::new(&app, &token);
    assert_eq!(api.get("/api/v1/files").await.status(), StatusCode::OK);

    let id: String = api_tokens::table
        .select(api_tokens::id)
        .first(&mut app.db.get().unwrap())
        .unwrap();
    let revoke = format!("/account/tokens/{id}/revoke");
    // Without the CSRF token: refused, the token still works.
    let forged = bob.post_form(&revoke, &[]).await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(api.get("/api/v1/files").await.status(), StatusCode::OK);
    // Someone else cannot revoke it.
    let eve = app.logged_in("eve", Role::User).await;
    let eve_csrf = eve.csrf_token("/account/tokens").await;
    let other = eve.post_form(&revoke, &[("csrf_token", &eve_csrf)]).await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    assert_eq!(api.get("/api/v1/files").await.status(), StatusCode::OK);
    // Its owner can.
    let csrf = bob.csrf_token("/account/tokens").await;
    let revoked = bob.post_form(&revoke, &[("csrf_token", &csrf)]).await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    refused(api.get("/api/v1/files").await).await;
    assert!(bob.get_text("/account/tokens").await.contains("revoked"));

    let created = wait_for_events(&app, "token_created", 1).await;
    assert_eq!(created[0].username.as_deref(), Some("bob"));
    assert!(
        created[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("backup script")
    );
    let revoked = wait_for_events(&app, "token_revoked", 1).await;
    assert_eq!(revoked.len(), 1);
    assert!(revoked[0].detail.as_deref().unwrap().contains(&id));
    for event in crate::audit_log::events(&app) {
        let detail = event.detail.unwrap_or_default();
        assert!(!detail.contains(&token), "{detail}");
    }
}

#[tokio::test]
async fn the_account_tokens_page_needs_a_login_and_a_name() {
    let app = spawn_app().await;
    let anonymous = app.browser();
    assert_eq!(
        anonymous.get("/account/tokens").await.status(),
        StatusCode::SEE_OTHER
    );
    let bob = app.logged_in("bob", Role::User).await;
    let csrf = bob.csrf_token("/account/tokens").await;
    let nameless = bob
        .post_form("/account/tokens", &[("csrf_token", &csrf), ("name", "  ")])
        .await;
    assert_eq!(nameless.status(), StatusCode::SEE_OTHER);
    let page = bob.get_text("/account/tokens").await;
    assert!(page.contains("Give the token a name"), "{page}");
    assert!(!page.contains("id=\"new-token\""));
    let bad_expiry = bob
        .post_form(
            "/account/tokens",
            &[("csrf_token", &csrf), ("name", "x"), ("expires", "soon")],
        )
        .await;
    assert_eq!(bad_expiry.status(), StatusCode::BAD_REQUEST);
    let count: i64 = api_tokens::table
        .count()
        .get_result(&mut app.db.get().unwrap())
        .unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn the_command_line_creates_lists_and_revokes_tokens() {
    let app = spawn_app().await;
    app.add_user("bob", Role::User);
    let created = app.cli(
        &[
            "token",
            "create",
            "bob",
            "--name",
            "nightly",
            "--expires",
            "7d",
        ],
        None,
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let stdout = text(&created.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let token = lines[0];
    assert!(token.starts_with("pm_") && token.len() == 46, "{token}");
    assert!(!text(&created.stderr).contains(token));
    let api = Api::new(&app, token);
    assert_eq!(api.get("/api/v1/files").await.status(), StatusCode::OK);

    let listed = app.cli(&["token", "list", "bob"], None);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let table = text(&listed.stdout);
    assert!(
        table.contains("nightly") && table.contains("active"),
        "{table}"
    );
    assert!(!table.contains(token));
    let id = table
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    let everyone = text(&app.cli(&["token", "list"], None).stdout);
    assert!(everyone.contains(&id), "{everyone}");

    let revoked = app.cli(&["token", "revoke", &id], None);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    refused(api.get("/api/v1/files").await).await;
    assert!(text(&app.cli(&["token", "list", "bob"], None).stdout).contains("revoked"));
    let twice = app.cli(&["token", "revoke", &id], None);
    assert!(twice.status.success());
    assert!(text(&twice.stdout).contains("already revoked"));

    // Errors: one line on stderr, exit 1.
    for args in [
        &["token", "create", "nobody"][..],
        &["token", "create", "bob", "--expires", "soon"],
        &["token", "list", "nobody"],
        &["token", "revoke", "0123456789abcdef0123456789abcdef"],
        &["token", "revoke", "not-an-id"],
    ] {
        let failed = app.cli(args, None);
        assert_eq!(failed.status.code(), Some(1), "{args:?}");
        let stderr = text(&failed.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(failed.stdout.is_empty(), "{args:?}");
    }

    let events = crate::audit_log::events(&app);
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert!(kinds.contains(&"token_created"), "{kinds:?}");
    assert!(kinds.contains(&"token_revoked"), "{kinds:?}");
}

#[tokio::test]
async fn no_token_reaches_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        &[
            ("PRIVATE_MEDIA_ADMIN_PASSWORD", "token-log-admin-password"),
            ("PRIVATE_MEDIA_LOG", "debug"),
        ],
    );
    let created = cli_command(dir.path(), &["token", "create", "admin"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", text(&created.stderr));
    let token = text(&created.stdout).trim().to_owned();
    let base = format!("http://127.0.0.1:{}", served.port);
    let client = reqwest::Client::new();
    let wrong = format!("{}Z", &token[..45]);
    for (sent, expected) in [(&token, 200), (&wrong, 401)] {
        let response = client
            .get(format!("{base}/api/v1/files"))
            .bearer_auth(sent)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), expected);
    }
    let browser = Browser::new(&base);
    assert_eq!(browser.get("/healthz").await.status(), StatusCode::OK);
    let lines = RefCell::new(Vec::new());
    served.stderr_line(Duration::from_secs(3), |line| {
        lines.borrow_mut().push(line.to_owned());
        false
    });
    let lines = lines.into_inner();
    let logged = served.stderr.iter().chain(lines.iter());
    let mut api_lines = 0;
    for line in logged {
        assert!(!line.contains(&token), "the token was logged: {line}");
        assert!(!line.contains(&wrong), "a bad token was logged: {line}");
        assert!(
            !line.contains(&token[3..20]),
            "part of the token was logged: {line}"
        );
        if line.contains("\"GET /api/v1/files HTTP/1.1\"") {
            api_lines += 1;
        }
    }
    assert_eq!(api_lines, 2, "{lines:?}");
}
