//! What every page shares: error pages that keep the navigation for a logged-in user and say
//! what to do next, `aria-current` and a skip link, a superuser's first login landing on the
//! admin's empty state, `Cache-Control: no-store` on logged-in pages, and control edges with
//! enough contrast in both colour schemes.

use private_media::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{PASSWORD, location, spawn_app, upload_file};

#[tokio::test]
async fn error_pages_keep_the_navigation_for_a_logged_in_user() {
    let app = spawn_app().await;
    let paul = app.logged_in("paul", Role::User).await;
    let token = paul.csrf_token("/files").await;
    let csrf = paul.post_form("/logout", &[("csrf_token", "wrong")]).await;
    let wrong_method = paul.get("/logout").await;
    for (what, response, status, advice) in [
        (
            "404",
            paul.get("/no/such/page").await,
            404,
            "Check the address",
        ),
        (
            "403",
            paul.get("/admin/files").await,
            403,
            "ask a staff member",
        ),
        ("csrf", csrf, 403, "reload it and try again"),
        ("405", wrong_method, 405, "Go back and try again"),
    ] {
        assert_eq!(response.status().as_u16(), status, "{what}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{what}");
        let page = response.text().await.expect("page");
        assert!(
            page.contains(r#"<nav aria-label="Main">"#),
            "{what}: {page}"
        );
        assert!(page.contains(">paul</a>"), "{what}: {page}");
        assert!(page.contains("Log out"), "{what}: {page}");
        assert!(page.contains(advice), "{what}: {page}");
        assert!(
            page.contains(r#"<a href="/files">Go to your files</a>"#),
            "{what}"
        );
        assert!(
            !page.contains("Go to the admin"),
            "{what}: a plain user is sent to the admin"
        );
    }
    // The session is untouched by the error pages.
    assert_eq!(paul.csrf_token("/files").await, token);

    // Staff are offered the admin too.
    let stella = app.logged_in("stella", Role::Staff).await;
    let page = stella.get_text("/admin/users").await;
    assert!(page.contains("Go to the admin"), "{page}");
}

#[tokio::test]
async fn error_pages_for_anyone_else_have_no_navigation_and_point_to_the_login() {
    let app = spawn_app().await;
    let anonymous = app.browser();
    let response = anonymous.get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let page = response.text().await.expect("page");
    assert!(!page.contains("Log out"), "{page}");
    assert!(page.contains(r#"<a href="/login">log in</a>"#), "{page}");
    // A logged-out session (its cookie kept after the logout) is anyone else too.
    let paul = app.logged_in("paul", Role::User).await;
    let cookie = paul.cookie_header();
    paul.logout().await;
    let stale = reqwest::Client::new()
        .get(paul.url("/no/such/page"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("GET");
    assert_eq!(stale.status(), StatusCode::NOT_FOUND);
    assert!(!stale.text().await.expect("page").contains("Log out"));
}

#[tokio::test]
async fn the_navigation_marks_the_current_page_and_has_a_skip_link() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    for (path, current) in [
        ("/files", "/files"),
        ("/admin/", "/admin/"),
        ("/admin/files", "/admin/"),
        ("/admin/files/new", "/admin/"),
        ("/admin/users", "/admin/users"),
        ("/admin/links", "/admin/links"),
        ("/admin/audit", "/admin/audit"),
    ] {
        let page = root.get_text(path).await;
        assert!(
            page.contains(&format!(r#"<a href="{current}" aria-current="page">"#)),
            "{path}: {page}"
        );
        let nav_start = page
            .find(r#"<nav aria-label="Main">"#)
            .expect("the navigation");
        let nav = &page[nav_start..nav_start + page[nav_start..].find("</nav>").expect("end")];
        assert_eq!(
            nav.matches("aria-current=\"page\"").count(),
            1,
            "{path}: {nav}"
        );
        assert!(
            page.contains(r##"<a class="skip-link" href="#main">"##),
            "{path}"
        );
        assert!(page.contains(r#"<main id="main""#), "{path}");
    }
    let login = app.browser().get_text("/login").await;
    assert!(login.contains("skip-link"), "{login}");
}

#[tokio::test]
async fn a_superusers_first_login_lands_on_the_admin_and_its_empty_state() {
    let app = spawn_app().await;
    app.add_user("root", Role::Superuser);
    app.add_user("stella", Role::Staff);
    let root = app.browser();
    let first = root.login("root", PASSWORD, None).await;
    assert_eq!(location(&first), "/admin/");
    let admin = root.get_text("/admin/").await;
    assert!(admin.contains("Nothing is stored yet"), "{admin}");
    assert!(
        admin.contains(r#"href="/admin/files/new">Upload files</a>"#),
        "{admin}"
    );
    assert!(
        admin.contains(r#"href="/admin/users">Add users</a>"#),
        "{admin}"
    );
    // Later logins, and a first login that asked for a page, go where they always went.
    let again = app.browser().login("root", PASSWORD, None).await;
    assert_eq!(location(&again), "/files");
    let stella = app.browser();
    assert_eq!(
        location(&stella.login("stella", PASSWORD, None).await),
        "/files"
    );
    // Staff see the empty state without the Users link; it goes once a file is stored.
    let staff_admin = stella.get_text("/admin/").await;
    assert!(staff_admin.contains("Nothing is stored yet"));
    assert!(!staff_admin.contains("Add users"));
    upload_file(&app, &stella, "a.txt", b"a", "owner", None, &[]).await;
    assert!(
        !stella
            .get_text("/admin/")
            .await
            .contains("Nothing is stored yet")
    );

    app.add_user("boss", Role::Superuser);
    let asked = app
        .browser()
        .login("boss", PASSWORD, Some("/admin/audit"))
        .await;
    assert_eq!(location(&asked), "/admin/audit");
}

#[tokio::test]
async fn logged_in_pages_are_never_stored_and_downloads_keep_their_policy() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let file = upload_file(&app, &root, "a.txt", b"a", "owner", None, &[]).await;
    let user = app.add_user("paul", Role::User);
    for path in [
        "/files".to_owned(),
        "/account".to_owned(),
        "/admin/".to_owned(),
        "/admin/users".to_owned(),
        format!("/admin/users/{}", user.id),
        format!("/admin/users/{}/delete", user.id),
        format!("/admin/files/{}", file.id),
    ] {
        let response = root.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    }
    let download = root.get(&format!("/files/{}/download", file.id)).await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.headers()["cache-control"], "private, no-cache");
    // A refused download is `private, no-cache` like every download answer, and since its
    // page has the navigation (the user's name, their CSRF token), never stored either.
    let paul = app.logged_in("pia", Role::User).await;
    for path in [
        format!("/files/{}/download", file.id),
        "/files/00000000000000000000000000000000/download".to_owned(),
        "/s/zzzz/download".to_owned(),
        format!("/private-media/{}", file.storage_key),
    ] {
        let refused = paul.get(&path).await;
        assert!(refused.status().is_client_error(), "{path}");
        assert_eq!(
            refused.headers()["cache-control"],
            "private, no-cache, no-store",
            "{path}"
        );
        let page = refused.text().await.expect("page");
        assert!(
            page.contains(r#"<nav aria-label="Main">"#) && page.contains(">pia</a>"),
            "{path}: {page}"
        );
    }
    // A page number past every list is the last page, not an overflow.
    let far = root.get("/admin/users?page=9223372036854775807").await;
    assert_eq!(far.status(), StatusCode::OK);
    // After the logout, the same pages show nothing private.
    root.logout().await;
    let back = root.get("/account").await;
    assert_eq!(back.status(), StatusCode::SEE_OTHER);
    assert_eq!(back.headers()["cache-control"], "no-store");
}

/// The WCAG relative luminance of `#rrggbb` (or `#rgb`).
fn luminance(hex: &str) -> f64 {
    let hex = hex.trim_start_matches('#');
    let hex: String = if hex.len() == 3 {
        hex.chars().flat_map(|c| [c, c]).collect()
    } else {
        hex.to_owned()
    };
    let channel = |i: usize| {
        let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
}

fn contrast(a: &str, b: &str) -> f64 {
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

/// The value of `--name` in the first rule of `css` that sets it.
fn variable<'a>(css: &'a str, name: &str) -> &'a str {
    let marker = format!("--{name}:");
    let start = css.find(&marker).unwrap_or_else(|| panic!("no --{name}")) + marker.len();
    css[start..].split(';').next().expect("a value").trim()
}

#[test]
fn control_edges_have_three_to_one_contrast_in_both_colour_schemes() {
    let css = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/static/style.css"))
        .expect("style.css");
    let dark_at = css
        .find("@media (prefers-color-scheme: dark)")
        .expect("a dark scheme");
    for (scheme, part) in [("light", &css[..dark_at]), ("dark", &css[dark_at..])] {
        let control = variable(part, "control");
        for background in ["card", "bg"] {
            let ratio = contrast(control, variable(part, background));
            assert!(
                ratio >= 3.0,
                "{scheme}: --control on --{background} is {ratio:.2}:1"
            );
        }
        // Text stays readable too (4.5:1).
        for text in ["fg", "muted", "accent", "danger"] {
            let ratio = contrast(variable(part, text), variable(part, "card"));
            assert!(ratio >= 4.5, "{scheme}: --{text} on --card is {ratio:.2}:1");
        }
    }
    // Inputs and the drop zone use it for their edges.
    assert!(css.contains("border: 1px solid var(--control)"));
    assert!(css.contains("main .dropzone { border-color: var(--control); }"));
}

/// Refusals made before a handler runs (a form over the size limit, a body that stalls) keep
/// the navigation too.
#[tokio::test]
async fn refusals_of_the_middleware_keep_the_navigation() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::helpers::spawn_app_with(|s| {
        s.server.body_idle_timeout = std::time::Duration::from_secs(1)
    })
    .await;
    let paul = app.logged_in("paul", Role::User).await;
    let token = paul.csrf_token("/account").await;
    let huge = "x".repeat(300 * 1024);
    let too_large = paul
        .post_form(
            "/account/password",
            &[("csrf_token", &token), ("filler", &huge)],
        )
        .await;
    let status = too_large.status();
    let page = too_large.text().await.expect("page");
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{page}");
    assert!(
        page.contains(">paul</a>") && page.contains("Log out"),
        "413: {page}"
    );
    assert!(page.contains("Send something smaller"), "413: {page}");

    let address = app.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let head = format!(
        "POST /account/password HTTP/1.1\r\nHost: test\r\nCookie: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ncsrf_token=",
        paul.cookie_header()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("the server closes the connection")
    .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        answer.contains(">paul</a>") && answer.contains("Log out"),
        "408: {answer}"
    );
}
