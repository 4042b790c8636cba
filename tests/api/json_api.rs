//! The JSON API under /api/v1/ (README: "Scripting"): the caller's readable files, one file,
//! its download exactly as the pages serve it, uploads and deletes for staff, JSON errors
//! everywhere, and the OpenAPI document that matches the route table.

use chrono::Utc;
use private_media::config::ContentTypePattern;
use private_media::db::models::api_token::TokenRow;
use private_media::db::models::user::User;
use private_media::domain::{Role, TokenExpiry};
use private_media::routes;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;

use crate::audit_log::wait_for_events;
use crate::helpers::{PNG, TestApp, spawn_app, spawn_app_with};

/// A fresh token of `user`.
pub fn token_for(app: &TestApp, user: &User) -> String {
    let mut conn = app.db.get().unwrap();
    TokenRow::issue(
        &mut conn,
        &user.id,
        "test",
        TokenExpiry::DEFAULT,
        Utc::now().naive_utc(),
    )
    .unwrap()
    .token
    .expose()
    .to_owned()
}

/// A client that sends `token`, keeps no cookies and follows no redirects.
pub struct Api {
    pub base: String,
    pub token: String,
    pub client: reqwest::Client,
}

impl Api {
    pub fn new(app: &TestApp, token: &str) -> Self {
        Self {
            base: app.base.clone(),
            token: token.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.unwrap()
    }

    pub async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    /// Uploads `files` with `access` (and more text fields).
    pub async fn upload(&self, fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> Response {
        let mut form = Form::new();
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        for (name, bytes) in files {
            form = form.part(
                "file",
                Part::bytes(bytes.to_vec()).file_name(name.to_string()),
            );
        }
        self.request(Method::POST, "/api/v1/files")
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Uploads one file and returns its JSON.
    pub async fn upload_one(&self, access: &str, owner: Option<&str>, name: &str) -> Value {
        let mut fields = vec![("access", access)];
        if let Some(owner) = owner {
            fields.push(("owner", owner));
        }
        let response = self
            .upload(&fields, &[(name, format!("content of {name}").as_bytes())])
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "upload of {name}");
        let mut body: Value = response.json().await.unwrap();
        body["files"][0].take()
    }
}

/// The body of a JSON error answer, checked to be one.
pub async fn error_of(response: Response) -> String {
    let ctype = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        ctype.as_deref(),
        Some("application/json"),
        "status {}",
        response.status()
    );
    let body: Value = response.json().await.unwrap();
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {body}"))
        .to_owned()
}

fn names(page: &Value) -> Vec<String> {
    page["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["title"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_list_shows_only_the_callers_readable_files_newest_first_in_pages() {
    let app = spawn_app().await;
    let staff = app.add_user("stella", Role::Staff);
    let bob = app.add_user("bob", Role::User);
    app.add_user("carol", Role::User);
    let staff_api = Api::new(&app, &token_for(&app, &staff));
    staff_api
        .upload_one("owner", Some("carol"), "carols.txt")
        .await;
    staff_api.upload_one("staff", None, "staff-only.txt").await;
    staff_api
        .upload_one("authenticated", None, "everyone.txt")
        .await;
    staff_api.upload_one("owner", Some("bob"), "bobs.txt").await;
    let listed = staff_api
        .upload(
            &[("access", "users"), ("users", "bob")],
            &[("listed.txt", b"for bob too")],
        )
        .await;
    assert_eq!(listed.status(), StatusCode::CREATED);

    let bob_api = Api::new(&app, &token_for(&app, &bob));
    let page = bob_api.json("/api/v1/files").await;
    assert_eq!(names(&page), ["listed.txt", "bobs.txt", "everyone.txt"]);
    assert_eq!(page["next_page"], Value::Null);
    let first = &page["files"][1];
    for key in [
        "id",
        "title",
        "name",
        "size",
        "content_type",
        "sha256",
        "uploaded_at",
        "owner",
        "access",
        "download_url",
    ] {
        assert!(!first[key].is_null(), "{key} in {first}");
    }
    assert_eq!(first["owner"], "bob");
    assert_eq!(first["access"], "owner");
    assert_eq!(first["size"], "content of bobs.txt".len());
    assert!(
        first["download_url"].as_str().unwrap().ends_with(&format!(
            "/api/v1/files/{}/download",
            first["id"].as_str().unwrap()
        )),
        "{first}"
    );

    // Pages of two: three pages for staff (five files), two for bob.
    let one = bob_api.json("/api/v1/files?per_page=2").await;
    assert_eq!(names(&one), ["listed.txt", "bobs.txt"]);
    assert_eq!(one["next_page"], 2);
    let two = bob_api.json("/api/v1/files?per_page=2&page=2").await;
    assert_eq!(names(&two), ["everyone.txt"]);
    assert_eq!(two["next_page"], Value::Null);
    let past = bob_api.json("/api/v1/files?per_page=2&page=9").await;
    assert_eq!(names(&past), Vec::<String>::new());
    assert_eq!(past["next_page"], Value::Null);
    assert_eq!(names(&staff_api.json("/api/v1/files").await).len(), 5);

    // The search of the pages, within what the caller may read.
    let found = bob_api.json("/api/v1/files?q=BOB").await;
    assert_eq!(names(&found), ["bobs.txt"]);
    let none = bob_api.json("/api/v1/files?q=carol").await;
    assert_eq!(names(&none), Vec::<String>::new());
}

#[tokio::test]
async fn one_file_is_shown_to_a_reader_and_refused_to_anyone_else() {
    let app = spawn_app().await;
    let staff = app.add_user("stella", Role::Staff);
    let bob = app.add_user("bob", Role::User);
    let staff_api = Api::new(&app, &token_for(&app, &staff));
    let secret = staff_api.upload_one("staff", None, "secret.txt").await;
    let open = staff_api
        .upload_one("authenticated", None, "open.txt")
        .await;
    let bob_api = Api::new(&app, &token_for(&app, &bob));

    let shown = bob_api
        .json(&format!("/api/v1/files/{}", open["id"].as_str().unwrap()))
        .await;
    assert_eq!(shown, open);
    let refused = bob_api
        .get(&format!("/api/v1/files/{}", secret["id"].as_str().unwrap()))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    error_of(refused).await;
    for unknown in ["0123456789abcdef0123456789abcdef", "not-an-id"] {
        let response = bob_api.get(&format!("/api/v1/files/{unknown}")).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{unknown}");
        error_of(response).await;
    }
}

#[tokio::test]
async fn a_download_is_served_as_the_pages_serve_it_and_recorded_as_api() {
    let app = spawn_app().await;
    let staff = app.add_user("stella", Role::Staff);
    let bob = app.add_user("bob", Role::User);
    let staff_api = Api::new(&app, &token_for(&app, &staff));
    let file = staff_api
        .upload_one("authenticated", None, "notes.txt")
        .await;
    let secret = staff_api.upload_one("staff", None, "secret.txt").await;
    let bob_api = Api::new(&app, &token_for(&app, &bob));
    let path = format!("/api/v1/files/{}/download", file["id"].as_str().unwrap());
    let content = "content of notes.txt";

    let whole = bob_api.get(&path).await;
    assert_eq!(whole.status(), StatusCode::OK);
    let headers = whole.headers().clone();
    assert_eq!(headers["cache-control"], "private, no-cache");
    assert_eq!(headers["accept-ranges"], "bytes");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment"),
        "{headers:?}"
    );
    assert_eq!(whole.text().await.unwrap(), content);
    let etag = headers["etag"].to_str().unwrap().to_owned();

    let ranged = bob_api
        .request(Method::GET, &path)
        .header("range", "bytes=0-6")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(ranged.text().await.unwrap(), &content[..7]);
    let unsatisfiable = bob_api
        .request(Method::GET, &path)
        .header("range", "bytes=5000-")
        .send()
        .await
        .unwrap();
    assert_eq!(unsatisfiable.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let cached = bob_api
        .request(Method::GET, &path)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(cached.headers()["cache-control"], "private, no-cache");

    let head = bob_api.request(Method::HEAD, &path).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], content.len().to_string());
    assert_eq!(head.bytes().await.unwrap().len(), 0);

    let refused = bob_api
        .get(&format!(
            "/api/v1/files/{}/download",
            secret["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    error_of(refused).await;
    let unknown = bob_api
        .get("/api/v1/files/0123456789abcdef0123456789abcdef/download")
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    error_of(unknown).await;

    let events = wait_for_events(&app, "download", 7).await;
    assert_eq!(events.len(), 7, "{events:?}");
    assert!(
        events.iter().all(|e| e.route.as_deref() == Some("api")),
        "{events:?}"
    );
    assert_eq!(events[0].username.as_deref(), Some("bob"));
    assert_eq!(events[0].outcome.as_deref(), Some("granted"));
    assert_eq!(events[0].delivery.as_deref(), Some("app"));
    assert_eq!(events[3].status, Some(304));
    assert_eq!(events[4].method.as_deref(), Some("HEAD"));
    assert_eq!(events[5].outcome.as_deref(), Some("refused"));
    assert_eq!(events[5].status, Some(403));
}

#[tokio::test]
async fn the_download_hands_over_to_nginx_when_configured() {
    let app = spawn_app_with(|s| {
        s.delivery.server = private_media::config::DeliveryServer::Nginx;
    })
    .await;
    let staff = app.add_user("stella", Role::Staff);
    let api = Api::new(&app, &token_for(&app, &staff));
    let file = api.upload_one("staff", None, "big.bin").await;
    let response = api
        .get(&format!(
            "/api/v1/files/{}/download",
            file["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let target = response.headers()["x-accel-redirect"].to_str().unwrap();
    assert!(target.starts_with("/private-x-accel-redirect/"), "{target}");
    assert_eq!(response.bytes().await.unwrap().len(), 0);
}

#[tokio::test]
async fn staff_upload_several_files_in_one_request_and_get_201_with_each() {
    let app = spawn_app().await;
    let staff = app.add_user("stella", Role::Staff);
    app.add_user("bob", Role::User);
    let api = Api::new(&app, &token_for(&app, &staff));
    let response = api
        .upload(
            &[("title", "Payslips"), ("access", "owner"), ("owner", "bob")],
            &[("jan.txt", b"january"), ("feb.txt", b"february")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let files = body["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["title"], "Payslips (jan.txt)");
    assert_eq!(files[0]["name"], "jan.txt");
    assert_eq!(files[1]["owner"], "bob");
    assert_eq!(files[1]["size"], 8);
    assert_eq!(app.file_rows().len(), 2);
    assert_eq!(wait_for_events(&app, "upload", 2).await.len(), 2);

    // The form's own mistakes: 422 with the form's message, nothing stored.
    let unknown_owner = api
        .upload(
            &[("access", "owner"), ("owner", "nobody")],
            &[("x.txt", b"x")],
        )
        .await;
    assert_eq!(unknown_owner.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_of(unknown_owner).await.contains("nobody"));
    assert_eq!(app.file_rows().len(), 2);
}

#[tokio::test]
async fn a_refused_file_gets_413_or_415_with_each_files_result_and_nothing_stored_for_it() {
    let app = spawn_app_with(|s| {
        s.upload.max_file_size = 1024;
        s.upload.content_types = vec![
            ContentTypePattern::parse("image/*").unwrap(),
            ContentTypePattern::parse("text/plain").unwrap(),
        ];
    })
    .await;
    let staff = app.add_user("stella", Role::Staff);
    let api = Api::new(&app, &token_for(&app, &staff));

    let too_large = api
        .upload(
            &[("access", "staff")],
            &[("ok.png", PNG), ("huge.txt", &[b'a'; 4096])],
        )
        .await;
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = too_large.json().await.unwrap();
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["name"], "ok.png");
    assert_eq!(results[0]["stored"], true);
    assert_eq!(results[0]["error"], Value::Null);
    assert_eq!(results[0]["file"]["content_type"], "image/png");
    assert_eq!(results[1]["name"], "huge.txt");
    assert_eq!(results[1]["stored"], false);
    assert!(results[1]["error"].as_str().unwrap().contains("too large"));
    assert_eq!(results[1]["file"], Value::Null);
    // The accepted one is stored, the refused one not at all.
    let rows = app.file_rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].original_name, "ok.png");
    let originals = || {
        app.stored_objects()
            .into_iter()
            .filter(|o| !o.contains(".thumbs/"))
            .count()
    };
    assert_eq!(originals(), 1);
    assert!(app.temp_files().is_empty());

    let wrong_type = api
        .upload(&[("access", "staff")], &[("page.html", b"<html><script>")])
        .await;
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: Value = wrong_type.json().await.unwrap();
    assert_eq!(body["results"][0]["stored"], false);
    assert!(
        body["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains("not allowed")
    );
    assert_eq!(app.file_rows().len(), 1);
    assert_eq!(originals(), 1);
    assert!(app.temp_files().is_empty());
}

#[tokio::test]
async fn plain_users_may_not_upload_or_delete() {
    let app = spawn_app().await;
    let staff = app.add_user("stella", Role::Staff);
    let bob = app.add_user("bob", Role::User);
    let file = Api::new(&app, &token_for(&app, &staff))
        .upload_one("authenticated", None, "keep.txt")
        .await;
    let bob_api = Api::new(&app, &token_for(&app, &bob));
    let upload = bob_api
        .upload(&[("access", "owner")], &[("mine.txt", b"mine")])
        .await;
    assert_eq!(upload.status(), StatusCode::FORBIDDEN);
    error_of(upload).await;
    let delete = bob_api
        .request(
            Method::DELETE,
            &format!("/api/v1/files/{}", file["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::FORBIDDEN);
    error_of(delete).await;
    assert_eq!(app.file_rows().len(), 1);
}

#[tokio::test]
async fn a_delete_answers_204_and_then_the_file_is_404() {
    let app = spawn_app().await;
    let staff = app.add_user("stella", Role::Staff);
    let api = Api::new(&app, &token_for(&app, &staff));
    let file = api.upload_one("staff", None, "gone.txt").await;
    let path = format!("/api/v1/files/{}", file["id"].as_str().unwrap());
    let deleted = api.request(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert!(app.file_rows().is_empty());
    assert!(app.stored_objects().is_empty());
    let again = api.request(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    error_of(again).await;
    let shown = api.get(&path).await;
    assert_eq!(shown.status(), StatusCode::NOT_FOUND);
    let events = wait_for_events(&app, "delete", 1).await;
    assert_eq!(events[0].username.as_deref(), Some("stella"));
}

#[tokio::test]
async fn every_error_under_the_api_is_json() {
    let app = spawn_app().await;
    let staff = app.add_user("stella", Role::Staff);
    let api = Api::new(&app, &token_for(&app, &staff));

    let unknown = api.get("/api/v1/nothing-here").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_of(unknown).await, "not found");
    let anonymous_unknown = reqwest::get(format!("{}/api/nope", app.base))
        .await
        .unwrap();
    assert_eq!(anonymous_unknown.status(), StatusCode::NOT_FOUND);
    error_of(anonymous_unknown).await;

    let wrong_method = api
        .request(Method::PUT, "/api/v1/files")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(wrong_method.headers().contains_key("allow"));
    assert_eq!(error_of(wrong_method).await, "method not allowed");

    // A text field over the form's bound: 413, as JSON.
    let big_title = "t".repeat(70 * 1024);
    let too_large = api
        .upload(
            &[("title", &big_title), ("access", "staff")],
            &[("a.txt", b"a")],
        )
        .await;
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error_of(too_large).await.contains("too large"));

    let not_multipart = api
        .request(Method::POST, "/api/v1/files")
        .json(&serde_json::json!({ "access": "staff" }))
        .send()
        .await
        .unwrap();
    assert_eq!(not_multipart.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(error_of(not_multipart).await.contains("multipart"));
    assert!(app.file_rows().is_empty());
}

#[tokio::test]
async fn the_openapi_document_matches_the_routes_and_every_operation_answers() {
    let app = spawn_app().await;
    let staff = app.add_user("stella", Role::Staff);
    let api = Api::new(&app, &token_for(&app, &staff));
    let file = api.upload_one("staff", None, "doc.txt").await;
    let id = file["id"].as_str().unwrap();

    // Open without a token: it describes routes, never a file.
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "parameters" {
                documented.push((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    let mut routed: Vec<(String, String)> = routes::table()
        .into_iter()
        .filter(|r| r.path.starts_with("/api/"))
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(
        documented, routed,
        "the document and the route table differ"
    );

    // DELETE last: it removes the file the others use.
    documented.sort_by_key(|(method, _)| method == "DELETE");
    for (method, path) in &documented {
        let filled = path.replace("{id}", id);
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = api.request(method.clone(), &filled);
        if method == Method::POST {
            request = request.multipart(
                Form::new()
                    .text("access", "staff")
                    .part("file", Part::bytes(b"x".to_vec()).file_name("x.txt")),
            );
        }
        let status = request.send().await.unwrap().status();
        assert!(
            status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
            "{method} {filled}: {status}"
        );
        assert!(status.is_success(), "{method} {filled}: {status}");
    }
}

#[tokio::test]
async fn an_s3_file_downloads_by_presigned_redirect_or_proxied_with_ranges() {
    use crate::helpers::s3_server::S3Server;
    use private_media::config::StorageSettings;
    let server = S3Server::start().await;
    for querystring_auth in [true, false] {
        let s3 = server.settings(querystring_auth);
        let app = spawn_app_with(|s| {
            s.storages.insert("s3".to_owned(), StorageSettings::S3(s3));
            s.upload.storage = "s3".to_owned();
        })
        .await;
        let staff = app.add_user("stella", Role::Staff);
        let api = Api::new(&app, &token_for(&app, &staff));
        let file = api.upload_one("staff", None, "in-s3.txt").await;
        let path = format!("/api/v1/files/{}/download", file["id"].as_str().unwrap());
        let response = api.get(&path).await;
        assert_eq!(response.headers()["cache-control"], "private, no-cache");
        if querystring_auth {
            assert_eq!(response.status(), StatusCode::FOUND);
            let url = response.headers()["location"].to_str().unwrap();
            assert!(url.starts_with(&server.endpoint), "{url}");
        } else {
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.text().await.unwrap(), "content of in-s3.txt");
            let ranged = api
                .request(Method::GET, &path)
                .header("range", "bytes=11-")
                .send()
                .await
                .unwrap();
            assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
            assert_eq!(ranged.text().await.unwrap(), "in-s3.txt");
        }
        let events = wait_for_events(&app, "download", 1).await;
        let how = if querystring_auth {
            "presigned"
        } else {
            "proxied"
        };
        assert_eq!(events[0].delivery.as_deref(), Some(how));
        assert_eq!(events[0].route.as_deref(), Some("api"));
    }
}
