//! What every page carries: the security headers and no inline script; `/healthz` and the
//! stylesheet are served, unknown pages and wrong methods get HTML 404 and 405 pages.

use private_media::domain::Role;

use crate::helpers::spawn_app;

fn assert_security_headers(response: &reqwest::Response, what: &str) {
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
    assert!(headers.contains_key("referrer-policy"), "{what}");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("script-src 'self'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
}

#[tokio::test]
async fn every_page_carries_the_security_headers() {
    let app = spawn_app().await;
    let anonymous = app.browser();
    let user = app.logged_in("alice", Role::User).await;
    for (browser, path, status) in [
        (&anonymous, "/login", 200),
        (&anonymous, "/healthz", 200),
        (&anonymous, "/files", 303),
        (&anonymous, "/no/such/page", 404),
        (&user, "/files", 200),
        (&user, "/admin/", 403),
    ] {
        let response = browser.get(path).await;
        assert_eq!(response.status().as_u16(), status, "{path}");
        assert_security_headers(&response, path);
    }
    let csrf_refused = anonymous.post_form("/logout", &[]).await;
    assert_eq!(csrf_refused.status().as_u16(), 403);
    assert_security_headers(&csrf_refused, "a refused POST");
}

#[tokio::test]
async fn pages_have_no_inline_script() {
    let app = spawn_app().await;
    let browser = app.logged_in("root", Role::Superuser).await;
    for path in [
        "/login",
        "/files",
        "/admin/",
        "/admin/files",
        "/admin/files/new",
        "/admin/users",
        "/nope",
    ] {
        let page = browser.get_text(path).await;
        // Scripts only from files: every <script has a src.
        for script in page.split("<script").skip(1) {
            assert!(script.starts_with(" src=\"/static/"), "{path}: {script}");
        }
        assert!(!page.contains(" onclick="), "{path}");
    }
}

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;
    let response = app.browser().get("/healthz").await;
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn unknown_pages_get_an_html_404() {
    let app = spawn_app().await;
    let response = app.browser().get("/does-not-exist").await;
    assert_eq!(response.status().as_u16(), 404);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(response.text().await.unwrap().contains("Not Found"));
}

#[tokio::test]
async fn a_wrong_method_gets_an_html_405() {
    let app = spawn_app().await;
    let browser = app.logged_in("alice", Role::User).await;
    let token = browser.csrf_token("/files").await;
    let response = browser
        .client
        .post(browser.url("/files"))
        .header("x-csrf-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Method Not Allowed")
    );
}

#[tokio::test]
async fn the_stylesheet_is_served() {
    let app = spawn_app().await;
    let response = app.browser().get("/static/style.css").await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert_eq!(
        app.browser()
            .get("/static/nope.css")
            .await
            .status()
            .as_u16(),
        404
    );
}
