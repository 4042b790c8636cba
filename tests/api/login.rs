use private_media::domain::Role;

use crate::helpers::{PASSWORD, csrf_token_in, location, spawn_app, spawn_app_with, text};

#[tokio::test]
async fn login_lands_on_next() {
    let app = spawn_app().await;
    app.add_user("alice", Role::User);
    let browser = app.browser();

    let response = browser
        .login("alice", PASSWORD, Some("/files?page=2"))
        .await;

    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(&response), "/files?page=2");
    assert_eq!(browser.get("/files").await.status().as_u16(), 200);
}

#[tokio::test]
async fn login_without_next_lands_on_files() {
    let app = spawn_app().await;
    app.add_user("alice", Role::User);
    let response = app.browser().login("alice", PASSWORD, None).await;
    assert_eq!(location(&response), "/files");
}

#[tokio::test]
async fn the_login_form_keeps_next_from_the_redirect() {
    let app = spawn_app().await;
    let browser = app.browser();
    let redirect = browser.get("/admin/").await;
    let login_page = location(&redirect);
    assert_eq!(login_page, "/login?next=%2Fadmin%2F");
    let page = browser.get_text(&login_page).await;
    assert!(page.contains(r#"name="next" value="/admin/""#), "{page}");
}

#[tokio::test]
async fn an_off_site_next_is_ignored() {
    let app = spawn_app().await;
    app.add_user("alice", Role::User);
    for next in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "http:/evil.example",
    ] {
        let browser = app.browser();
        let response = browser.login("alice", PASSWORD, Some(next)).await;
        assert_eq!(response.status().as_u16(), 303, "{next}");
        assert_eq!(location(&response), "/files", "{next}");
    }
}

/// The page without its CSRF token, which differs per session by design.
fn without_token(page: &str) -> String {
    match csrf_token_in(page) {
        Some(token) => page.replace(&token, "TOKEN"),
        None => page.to_owned(),
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let app = spawn_app().await;
    app.add_user("alice", Role::User);
    let inactive = app.add_user("mallory", Role::User);
    app.cli(&["user", "deactivate", inactive.username.as_str()], None);

    let mut answers = Vec::new();
    for (name, password) in [
        ("alice", "wrong password!"),
        ("nobody", "wrong password!"),
        ("mallory", PASSWORD),
        ("not a valid name", "wrong password!"),
    ] {
        let response = app.browser().login(name, password, None).await;
        let status = response.status().as_u16();
        let page = response.text().await.unwrap();
        assert!(
            page.contains("Please enter a correct username and password."),
            "{name}: {page}"
        );
        // The form echoes the typed name back; compare the rest.
        answers.push((status, without_token(&page).replace(name, "NAME")));
    }
    assert_eq!(answers[0].0, 200);
    for answer in &answers[1..] {
        assert_eq!(answer, &answers[0]);
    }
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let browser = app.logged_in("alice", Role::User).await;
    let copied_cookie = browser.cookie_header();
    let replay = |cookie: String| {
        let url = browser.url("/files");
        async move {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(replay(copied_cookie.clone()).await, 200);

    let response = browser.logout().await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(&response), "/login");
    assert_eq!(browser.get("/files").await.status().as_u16(), 303);

    assert_eq!(
        replay(copied_cookie).await,
        303,
        "a copied cookie outlived logout"
    );
}

#[tokio::test]
async fn a_post_without_a_valid_csrf_token_is_refused() {
    let app = spawn_app().await;
    app.add_user("alice", Role::User);
    let browser = app.browser();
    let token = browser.csrf_token("/login").await;

    let missing = browser
        .post_form("/login", &[("username", "alice"), ("password", PASSWORD)])
        .await;
    assert_eq!(missing.status().as_u16(), 403);
    let wrong = browser
        .post_form(
            "/login",
            &[
                ("csrf_token", "x".repeat(token.len()).as_str()),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(wrong.status().as_u16(), 403);
    // A token is bound to its session: another browser's token does not work here.
    let other = app.browser();
    let response = other
        .post_form(
            "/login",
            &[
                ("csrf_token", token.as_str()),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 403);
    let body = response.text().await.unwrap();
    assert!(body.contains("403"), "{body}");

    let logged_in = app.logged_in("bob", Role::User).await;
    let logout = logged_in.post_form("/logout", &[]).await;
    assert_eq!(logout.status().as_u16(), 403);
    assert_eq!(logged_in.get("/files").await.status().as_u16(), 200);
    let json = logged_in
        .client
        .post(logged_in.url("/logout"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status().as_u16(), 403);
}

#[tokio::test]
async fn the_csrf_token_is_accepted_from_a_header() {
    let app = spawn_app().await;
    let browser = app.logged_in("alice", Role::User).await;
    let token = browser.csrf_token("/files").await;
    let response = browser
        .client
        .post(browser.url("/logout"))
        .header("x-csrf-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
}

#[tokio::test]
async fn login_renews_the_session_and_its_csrf_token() {
    let app = spawn_app().await;
    app.add_user("alice", Role::User);
    let browser = app.browser();
    let before = browser.csrf_token("/login").await;
    browser.login("alice", PASSWORD, None).await;
    let after = browser.csrf_token("/files").await;
    assert_ne!(before, after);
}

#[tokio::test]
async fn a_session_stops_working_after_set_password() {
    let app = spawn_app().await;
    let browser = app.logged_in("alice", Role::User).await;
    assert_eq!(browser.get("/files").await.status().as_u16(), 200);

    let output = app.cli(
        &["user", "set-password", "alice", "--password-stdin"],
        Some("a brand new password\n"),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));

    assert_eq!(browser.get("/files").await.status().as_u16(), 303);
    let old = app.browser().login("alice", PASSWORD, None).await;
    assert_eq!(old.status().as_u16(), 200, "the old password still works");
    let new = app
        .browser()
        .login("alice", "a brand new password", None)
        .await;
    assert_eq!(new.status().as_u16(), 303);
}

#[tokio::test]
async fn a_session_stops_working_after_deactivation() {
    let app = spawn_app().await;
    let browser = app.logged_in("alice", Role::User).await;
    let output = app.cli(&["user", "deactivate", "alice"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(browser.get("/files").await.status().as_u16(), 303);

    // Reactivating does not bring the old session back.
    let output = app.cli(&["user", "activate", "alice"], None);
    assert!(output.status.success());
    assert_eq!(browser.get("/files").await.status().as_u16(), 303);
    assert_eq!(
        app.browser()
            .login("alice", PASSWORD, None)
            .await
            .status()
            .as_u16(),
        303
    );
}

#[tokio::test]
async fn repeated_failures_throttle_that_name_but_not_other_users() {
    let app = spawn_app().await;
    app.add_user("alice", Role::User);
    app.add_user("bob", Role::User);
    let attacker = app.browser();
    for _ in 0..5 {
        let response = attacker.login("alice", "guess guess", None).await;
        assert_eq!(response.status().as_u16(), 200);
    }

    // Now even the right password is refused for a while, before it is checked.
    let blocked = app.browser().login("alice", PASSWORD, None).await;
    assert_eq!(blocked.status().as_u16(), 429);
    assert!(blocked.headers().contains_key("retry-after"));
    let page = blocked.text().await.unwrap();
    assert!(page.contains("Too many failed login attempts"), "{page}");

    // Other users from the same address still log in.
    let bob = app.browser().login("bob", PASSWORD, None).await;
    assert_eq!(bob.status().as_u16(), 303);
}

#[tokio::test]
async fn the_session_cookie_is_http_only_and_same_site() {
    let app = spawn_app().await;
    app.add_user("alice", Role::User);
    let response = app.browser().login("alice", PASSWORD, None).await;
    let cookie = response
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("private_media_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "loopback bind: {cookie}");
}

#[tokio::test]
async fn the_session_cookie_is_secure_when_configured() {
    let app = spawn_app_with(|s| s.secure_cookies = Some(true)).await;
    let response = app.browser().get("/login").await;
    let cookie = response
        .headers()
        .get("set-cookie")
        .expect("a session cookie")
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn the_session_cookie_is_encrypted() {
    let app = spawn_app().await;
    let user = app.add_user("alice", Role::User);
    let response = app.browser().login("alice", PASSWORD, None).await;
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        !cookie.contains(user.id.as_str()),
        "the user id is readable: {cookie}"
    );
    // The session's JSON key, quoted as it would be if readable (a bare `uid` turns up in the
    // random ciphertext about once in a thousand runs).
    assert!(
        !cookie.contains("\"uid") && !cookie.contains("%22uid"),
        "{cookie}"
    );
}

#[tokio::test]
async fn a_login_over_plain_http_with_secure_cookies_says_why_it_failed() {
    let app = spawn_app_with(|s| s.secure_cookies = Some(true)).await;
    app.add_user("alice", Role::User);
    // The page comes with a token and a Secure cookie, which a browser does not send back over
    // plain HTTP (this test client would, so the POST goes out without it, as a browser's does).
    let token = app.browser().csrf_token("/login").await;
    let response = reqwest::Client::new()
        .post(format!("{}/login", app.base))
        .form(&[
            ("csrf_token", token.as_str()),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let page = response.text().await.unwrap();
    assert!(page.contains("only over HTTPS"), "{page}");
    assert!(!page.contains("expired"), "{page}");
}

#[tokio::test]
async fn a_missing_session_over_https_is_the_plain_csrf_refusal() {
    // Behind a trusted proxy that says the client used HTTPS, a missing cookie is not the
    // transport's fault.
    let app = spawn_app_with(|s| {
        s.secure_cookies = Some(true);
        s.server.trusted_proxies =
            private_media::client_addr::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    let response = app
        .browser()
        .client
        .post(format!("{}/login", app.base))
        .header("x-forwarded-proto", "https")
        .form(&[("csrf_token", "x"), ("username", "a"), ("password", "b")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    let page = response.text().await.unwrap();
    assert!(page.contains("expired"), "{page}");
    // Without secure cookies the old message stays too.
    let plain = spawn_app().await;
    let response = plain
        .browser()
        .post_form("/login", &[("csrf_token", "x"), ("username", "a")])
        .await;
    let page = response.text().await.unwrap();
    assert!(page.contains("expired"), "{page}");
}

/// A typed username is the attacker's text: a newline in it must not start a log line of its
/// own (a forged "logged in"), nor an escape sequence reach a terminal.
#[tokio::test]
async fn a_username_with_a_newline_and_an_escape_stays_on_its_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let served = crate::helpers::serve(dir.path(), &[("PRIVATE_MEDIA_LOG", "info")]);
    let browser = crate::helpers::Browser::new(&format!("http://127.0.0.1:{}", served.port));
    let forged = "zz\n2026-12-03T06:30:00.000000Z  INFO private_media::routes::login: logged in username=root\x1b[31m";
    let response = browser.login(forged, "wrong password", None).await;
    assert_eq!(response.status().as_u16(), 200);
    let line = served
        .stderr_line(std::time::Duration::from_secs(10), |line| {
            line.contains("failed login")
        })
        .expect("the failed login is logged");
    // The whole event is one line: the fields after the name are on it too.
    assert!(line.contains("address=127.0.0.1"), "{line:?}");
    assert!(line.contains("logged in username=root"), "{line:?}");
    assert!(!line.contains('\x1b'), "{line:?}");
    let fake = served.stderr_line(std::time::Duration::from_millis(500), |line| {
        line.starts_with("2026-12-03T06:30:00")
    });
    assert_eq!(fake, None, "a forged line was logged");
}
