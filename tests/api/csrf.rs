//! CSRF: every POST of the route table is refused without a valid token, whatever the body's
//! encoding, before its handler runs; the header works everywhere, uploads included.

use private_media::db::models::user::User;
use private_media::domain::Role;
use private_media::routes;

use crate::helpers::{
    BOUNDARY, Browser, PASSWORD, Part, RouteIds, TestApp, fill_route, multipart_body, spawn_app,
};

/// What a POST could change: every user, every file row, every stored object.
fn snapshot(app: &TestApp) -> String {
    let mut conn = app.db.get().expect("connection");
    let users = User::list(&mut conn).expect("users");
    format!(
        "{users:?}\n{:?}\n{:?}",
        app.file_rows(),
        app.stored_objects()
    )
}

/// Fields that would do harm on the route if it took them.
fn harmful_fields(path: &str) -> Vec<(&'static str, &'static str)> {
    if path == "/login" {
        return vec![("username", "root"), ("password", PASSWORD)];
    }
    vec![
        ("title", "pwned"),
        ("access", "authenticated"),
        ("username", "eve"),
        ("password", "a new password for eve"),
        ("role", "superuser"),
    ]
}

fn tampered(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let last = chars.last_mut().expect("a token is not empty");
    *last = if *last == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

/// Every way the test sends a POST: `(what, encoding, token in the body, token in a header)`.
fn attempts(token: &str) -> Vec<(&'static str, &'static str, Option<String>, Option<String>)> {
    let wrong = tampered(token);
    vec![
        ("no token", "urlencoded", None, None),
        ("no token", "multipart", None, None),
        ("no token", "json", None, None),
        ("no token", "none", None, None),
        ("a tampered token", "urlencoded", Some(wrong.clone()), None),
        ("a tampered token", "multipart", Some(wrong.clone()), None),
        ("a tampered header", "json", None, Some(wrong.clone())),
        // The header decides when it is there, even if the body carries the right token.
        (
            "a tampered header",
            "urlencoded",
            Some(token.to_owned()),
            Some(wrong.clone()),
        ),
        (
            "a tampered header",
            "multipart",
            Some(token.to_owned()),
            Some(wrong),
        ),
    ]
}

async fn post(
    browser: &Browser,
    path: &str,
    encoding: &str,
    body_token: Option<&str>,
    header_token: Option<&str>,
) -> reqwest::Response {
    let mut fields = harmful_fields(path);
    if let Some(token) = body_token {
        fields.insert(0, ("csrf_token", token));
    }
    let mut request = browser.client.post(browser.url(path));
    request = match encoding {
        "urlencoded" => request.form(&fields),
        "multipart" => {
            let mut parts: Vec<Part<'_>> = fields.iter().map(|(k, v)| Part::Text(k, v)).collect();
            parts.push(Part::File("pwned.txt", b"pwned"));
            request
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(multipart_body(&parts))
        }
        "json" => {
            let object: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
                .collect();
            request
                .header("content-type", "application/json")
                .body(serde_json::Value::Object(object).to_string())
        }
        _ => request,
    };
    if let Some(token) = header_token {
        request = request.header("x-csrf-token", token);
    }
    request.send().await.expect("POST")
}

#[tokio::test]
async fn every_post_route_refuses_every_encoding_without_a_valid_token_and_changes_nothing() {
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let victim = app.add_user("victim", Role::User);
    let stored = root.upload("owner", &[("keep.txt", b"keep me")]).await;
    assert_eq!(stored.status().as_u16(), 303);
    let file = app.file_rows().remove(0);
    let ids = RouteIds {
        file_id: file.id.as_str(),
        user_id: victim.id.as_str(),
        storage_key: file.storage_key.as_str(),
    };
    let token = root.csrf_token("/files").await;
    let before = snapshot(&app);

    let posts: Vec<String> = routes::table()
        .into_iter()
        .filter(|r| r.method == actix_web::http::Method::POST)
        .map(|r| fill_route(r.path, &ids))
        .collect();
    assert!(
        posts.contains(&format!("/admin/files/{}/delete", file.id)),
        "{posts:?}"
    );
    for path in &posts {
        for (what, encoding, body_token, header_token) in attempts(&token) {
            let response = post(
                &root,
                path,
                encoding,
                body_token.as_deref(),
                header_token.as_deref(),
            )
            .await;
            // The API takes no cookie at all: without a Bearer token it answers 401.
            let refusal = if path.starts_with("/api/") { 401 } else { 403 };
            assert_eq!(
                response.status().as_u16(),
                refusal,
                "POST {path} ({encoding}, {what}) was not refused"
            );
        }
    }

    assert_eq!(snapshot(&app), before, "a refused POST changed something");
    // Still logged in, in the same session (a login would have renewed the token).
    assert_eq!(root.get("/admin/").await.status().as_u16(), 200);
    assert_eq!(root.csrf_token("/files").await, token);
}

#[tokio::test]
async fn a_multipart_delete_without_a_token_deletes_nothing() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    assert_eq!(
        staff
            .upload("owner", &[("keep.txt", b"keep")])
            .await
            .status(),
        303
    );
    let id = app.file_rows()[0].id.clone();
    let form = reqwest::multipart::Form::new().text("x", "y");
    let response = staff
        .client
        .post(staff.url(&format!("/admin/files/{id}/delete")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(app.file_rows().len(), 1);
    assert_eq!(app.stored_objects().len(), 1);
}

#[tokio::test]
async fn an_upload_with_the_token_in_the_header_and_none_in_the_form_is_stored() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;
    let body = multipart_body(&[
        Part::Text("access", "owner"),
        Part::File("by-header.txt", b"sent by a script"),
    ]);
    let response = staff
        .upload_request(body)
        .header("x-csrf-token", token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let rows = app.file_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].original_name, "by-header.txt");
}

#[tokio::test]
async fn text_fields_before_the_token_are_fine_but_a_file_before_it_is_not() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;

    let fields_first = staff
        .post_multipart(&[
            Part::Text("title", "Report"),
            Part::Text("access", "owner"),
            Part::Text("csrf_token", &token),
            Part::File("report.txt", b"numbers"),
        ])
        .await;
    assert_eq!(fields_first.status().as_u16(), 303);
    let rows = app.file_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].title, "Report");

    let file_first = staff
        .post_multipart(&[
            Part::File("sneaky.txt", b"bytes"),
            Part::Text("csrf_token", &token),
            Part::Text("access", "owner"),
        ])
        .await;
    assert_eq!(file_first.status().as_u16(), 403);
    assert_eq!(app.file_rows().len(), 1);
}

#[tokio::test]
async fn a_multipart_form_that_hides_its_token_behind_too_much_text_is_refused() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;
    // Past the 64 KiB promised and the parser's read-ahead (72 KiB) on top.
    let padding = "p".repeat(140 * 1024);
    let response = staff
        .post_multipart(&[
            Part::Text("padding", &padding),
            Part::Text("csrf_token", &token),
            Part::Text("access", "owner"),
            Part::File("late.txt", b"bytes"),
        ])
        .await;
    assert_eq!(response.status().as_u16(), 403);
    app.assert_nothing_stored();
}

/// The README's promise: a token within the first 64 KiB is found, however the parser reads
/// ahead into the large file that follows it.
#[tokio::test]
async fn a_token_that_ends_just_inside_64_kib_before_a_large_file_is_found() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;
    let bytes: Vec<u8> = (0..2 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let form = |padding: &str| {
        multipart_body(&[
            Part::Text("padding", padding),
            Part::Text("csrf_token", &token),
            Part::Text("access", "owner"),
            Part::File("after.bin", &bytes),
        ])
    };
    let token_end = |body: &[u8]| {
        let needle = token.as_bytes();
        body.windows(needle.len())
            .position(|w| w == needle)
            .expect("token in body")
            + needle.len()
    };
    let unpadded = token_end(&form(""));
    let padding = "p".repeat(64 * 1024 - 8 - unpadded);
    let body = form(&padding);
    assert_eq!(token_end(&body), 64 * 1024 - 8);
    let response = staff.upload_request(body).send().await.expect("upload");
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(app.file_rows().len(), 1);
}

#[tokio::test]
async fn a_large_upload_with_the_token_first_arrives_whole() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    // Bigger than the bound on what is read before the token, so the replay must hand on
    // the recorded head and the unread rest without losing or repeating a byte.
    let bytes: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let response = staff.upload("owner", &[("big.bin", &bytes)]).await;
    assert_eq!(response.status().as_u16(), 303);
    let row = app.file_rows().remove(0);
    let stored = std::fs::read(app.storage_root().join(row.storage_key.as_str())).unwrap();
    assert_eq!(stored.len(), bytes.len());
    assert!(stored == bytes, "the stored bytes differ from the upload");
}
