//! `Cache-Control` on every answer: downloads (errors and redirects too) `private, no-cache`,
//! and `no-store` too when a logged-in user's refusal shows the navigation; every other page,
//! error and redirect `no-store`, the static assets their own policy.

use private_media::domain::Role;
use private_media::routes;

use crate::helpers::{Browser, RouteIds, fill_route, spawn_app};

const DOWNLOAD: &str = "private, no-cache";
const PAGE: &str = "no-store";
/// A logged-in user's refused download: its page has the navigation (name, CSRF token).
const REFUSED: &str = "private, no-cache, no-store";

fn cache_control(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_else(|| "(none)".to_owned())
}

async fn expect(browser: &Browser, method: &str, path: &str, status: u16, policy: &str) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let response = browser
        .client
        .request(method.clone(), browser.url(path))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), status, "{method} {path}");
    assert_eq!(
        cache_control(&response),
        policy,
        "{method} {path} ({status})"
    );
}

#[tokio::test]
async fn download_answers_are_private_whatever_their_status() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    assert_eq!(
        staff.upload("owner", &[("a.txt", b"abc")]).await.status(),
        303
    );
    let file = app.file_rows().remove(0);
    let by_id = format!("/files/{}/download", file.id);
    let by_path = format!("/private-media/{}", file.storage_key);
    let anonymous = app.browser();
    let user = app.logged_in("alice", Role::User).await;
    let root = app.logged_in("root", Role::Superuser).await;

    expect(&staff, "GET", &by_id, 200, DOWNLOAD).await;
    expect(&root, "GET", &by_path, 200, DOWNLOAD).await;
    expect(&anonymous, "GET", &by_id, 303, DOWNLOAD).await;
    expect(&anonymous, "GET", &by_path, 303, DOWNLOAD).await;
    expect(&user, "GET", &by_id, 403, REFUSED).await;
    expect(&user, "HEAD", &by_id, 403, REFUSED).await;
    expect(&user, "GET", &by_path, 403, REFUSED).await;
    expect(&staff, "GET", "/files/nosuchfile/download", 404, REFUSED).await;
    expect(&root, "GET", "/private-media/no/such.txt", 404, REFUSED).await;
    // `..%2f`, not `%2e%2e/`: the client would resolve an encoded dot segment itself.
    expect(&root, "GET", "/private-media/..%2fsecret.key", 404, REFUSED).await;
    // Wrong method: refused by CSRF before routing, or 405 with a valid token.
    expect(&staff, "POST", &by_id, 403, REFUSED).await;
    let token = staff.csrf_token("/files").await;
    let wrong_method = staff
        .client
        .put(staff.url(&by_id))
        .header("x-csrf-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status().as_u16(), 405);
    assert_eq!(cache_control(&wrong_method), REFUSED);
}

#[tokio::test]
async fn pages_errors_and_redirects_are_never_stored() {
    let app = spawn_app().await;
    let anonymous = app.browser();
    let user = app.logged_in("alice", Role::User).await;
    let staff = app.logged_in("stella", Role::Staff).await;

    expect(&anonymous, "GET", "/login", 200, PAGE).await;
    expect(&anonymous, "GET", "/", 303, PAGE).await;
    expect(&anonymous, "GET", "/files", 303, PAGE).await;
    expect(&anonymous, "GET", "/admin/files", 303, PAGE).await;
    expect(&anonymous, "GET", "/no/such/page", 404, PAGE).await;
    expect(&anonymous, "POST", "/logout", 403, PAGE).await;
    expect(&anonymous, "GET", "/healthz", 200, PAGE).await;
    expect(&user, "GET", "/files", 200, PAGE).await;
    expect(&user, "GET", "/admin/", 403, PAGE).await;
    expect(&staff, "GET", "/admin/files", 200, PAGE).await;
    expect(&staff, "GET", "/admin/files/nosuchfile", 404, PAGE).await;
    expect(&staff, "GET", "/admin", 308, PAGE).await;
    let token = staff.csrf_token("/files").await;
    let wrong_method = staff
        .client
        .post(staff.url("/files"))
        .header("x-csrf-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status().as_u16(), 405);
    assert_eq!(cache_control(&wrong_method), PAGE);
    // The assets choose their own caching; an unknown one is a page like any 404.
    expect(
        &anonymous,
        "GET",
        "/static/style.css",
        200,
        "public, max-age=3600",
    )
    .await;
    expect(&anonymous, "GET", "/static/nope.css", 404, PAGE).await;
}

#[tokio::test]
async fn every_get_route_of_the_table_carries_a_cache_policy() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let victim = app.add_user("victim", Role::User);
    assert_eq!(
        root.upload("owner", &[("a.txt", b"abc")]).await.status(),
        303
    );
    let file = app.file_rows().remove(0);
    let ids = RouteIds {
        file_id: file.id.as_str(),
        user_id: victim.id.as_str(),
        storage_key: file.storage_key.as_str(),
    };
    let anonymous = app.browser();
    for route in routes::table() {
        if route.method != actix_web::http::Method::GET {
            continue;
        }
        let path = fill_route(route.path, &ids);
        for (who, browser) in [("root", &root), ("anonymous", &anonymous)] {
            let response = browser.get(&path).await;
            let policy = cache_control(&response);
            let expected = if route.path.starts_with("/static/") {
                "public, max-age=3600"
            } else if routes::is_download(route.path) {
                // The API ignores cookies: root is nobody there, and gets no navigation.
                if who == "root"
                    && response.status().is_client_error()
                    && !route.path.starts_with("/api/")
                {
                    REFUSED
                } else {
                    DOWNLOAD
                }
            } else {
                PAGE
            };
            assert_eq!(
                policy,
                expected,
                "GET {path} as {who} ({})",
                response.status()
            );
        }
    }
}
