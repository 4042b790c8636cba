//! The file page's edits beyond title and rule: a new owner, new content under the same id,
//! readers named in a text field (and the username search behind its picker), the duplicate
//! warning at upload, the inline preview and the download link to copy.

use std::time::Duration;

use private_media::config::ContentTypePattern;
use private_media::db::models::file::FileRow;
use private_media::db::models::user::User;
use private_media::domain::{FileId, Role, Username};
use reqwest::StatusCode;
use sha2::{Digest, Sha256};

use crate::audit_log::{events, wait_for_events};
use crate::helpers::{
    BOUNDARY, Browser, PNG, Part, TestApp, location, multipart_body, spawn_app, spawn_app_with,
    upload_file,
};

fn row(app: &TestApp, id: &FileId) -> FileRow {
    let mut conn = app.db.get().expect("connection");
    FileRow::find(&mut conn, id)
        .expect("query")
        .expect("the row")
}

fn readers(app: &TestApp, id: &FileId) -> Vec<String> {
    let mut conn = app.db.get().expect("connection");
    FileRow::reader_names(&mut conn, id)
        .expect("readers")
        .into_iter()
        .map(|n| n.into_string())
        .collect()
}

/// POSTs a multipart body to the file's replace route.
async fn replace(staff: &Browser, id: &FileId, parts: &[Part<'_>]) -> reqwest::Response {
    staff
        .client
        .post(staff.url(&format!("/admin/files/{id}/replace")))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart_body(parts))
        .send()
        .await
        .expect("POST replace")
}

async fn replace_with(staff: &Browser, id: &FileId, name: &str, bytes: &[u8]) -> reqwest::Response {
    let token = staff.csrf_token(&format!("/admin/files/{id}")).await;
    replace(
        staff,
        id,
        &[Part::Text("csrf_token", &token), Part::File(name, bytes)],
    )
    .await
}

async fn edit(staff: &Browser, id: &FileId, fields: &[(&str, &str)]) -> reqwest::Response {
    let token = staff.csrf_token(&format!("/admin/files/{id}")).await;
    let mut form = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    staff.post_form(&format!("/admin/files/{id}"), &form).await
}

/// A share link's path (`/s/…`) made on the file's page.
async fn share_link(staff: &Browser, id: &FileId) -> String {
    let token = staff.csrf_token(&format!("/admin/files/{id}")).await;
    let made = staff
        .post_form(
            &format!("/admin/files/{id}/links"),
            &[("csrf_token", &token), ("expires_in", "7d")],
        )
        .await;
    assert_eq!(made.status(), StatusCode::SEE_OTHER);
    let page = staff.get_text(&format!("/admin/files/{id}")).await;
    let start = page.find("id=\"new-link-url\"").expect("the new link");
    let url = page[start..]
        .split("value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .expect("its value");
    url.strip_prefix(&staff.base)
        .expect("on this site")
        .to_owned()
}

#[tokio::test]
async fn replacing_keeps_the_id_the_links_and_the_rule_and_removes_the_old_object() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let paul = app.logged_in("paul", Role::User).await;
    let first = upload_file(
        &app,
        &staff,
        "v1.txt",
        b"first version",
        "users",
        None,
        &["paul"],
    )
    .await;
    let link = share_link(&staff, &first.id).await;
    let old_key = first.storage_key.to_string();
    assert!(app.stored_objects().contains(&old_key));

    let new_bytes = b"second version, a little longer";
    let response = replace_with(&staff, &first.id, "v2.txt", new_bytes).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/admin/files/{}", first.id));

    let after = row(&app, &first.id);
    assert_eq!(after.id, first.id);
    assert_eq!(after.title, first.title, "the title stays");
    assert_eq!(after.rule, first.rule, "the rule stays");
    assert_eq!(readers(&app, &first.id), ["paul"], "the readers stay");
    assert_eq!(after.original_name, "v2.txt");
    assert_eq!(after.size, new_bytes.len() as i64);
    assert_eq!(after.sha256, hex::encode(Sha256::digest(new_bytes)));
    assert_ne!(after.storage_key, first.storage_key);
    let objects = app.stored_objects();
    assert!(
        !objects.contains(&old_key),
        "the old object is gone: {objects:?}"
    );
    assert!(
        objects.contains(&after.storage_key.to_string()),
        "{objects:?}"
    );
    assert_eq!(app.file_rows().len(), 1, "no second row");

    // The reader and the share link get the new bytes at the old addresses.
    let download = paul.get(&format!("/files/{}/download", first.id)).await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.expect("body").as_ref(), new_bytes);
    let shared = reqwest::get(format!("{}{link}/download", app.base))
        .await
        .expect("share download");
    assert_eq!(shared.status(), StatusCode::OK);
    assert_eq!(shared.bytes().await.expect("body").as_ref(), new_bytes);

    let page = staff.get_text(&format!("/admin/files/{}", first.id)).await;
    assert!(page.contains("Replaced the content"), "the flash says so");
    let events = wait_for_events(&app, "replace", 1).await;
    assert_eq!(events.len(), 1, "the replacement is in the audit log");
    let event = &events[0];
    assert_eq!(event.file_id.as_deref(), Some(first.id.as_str()));
    assert_eq!(event.username.as_deref(), Some("stella"));
    let detail = event.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("v1.txt") && detail.contains("v2.txt"),
        "{detail}"
    );
    assert!(detail.contains(&old_key), "{detail}");
}

#[tokio::test]
async fn a_refused_replacement_changes_nothing_and_says_why() {
    let app = spawn_app_with(|s| {
        s.upload.max_file_size = 128;
        s.upload.content_types = vec![ContentTypePattern::parse("text/*").unwrap()];
    })
    .await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(
        &app,
        &staff,
        "notes.txt",
        b"short notes",
        "staff",
        None,
        &[],
    )
    .await;
    let objects = app.stored_objects();

    let too_large = replace_with(&staff, &file.id, "big.txt", &[b'a'; 300]).await;
    assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let page = too_large.text().await.expect("page");
    assert!(page.contains("too large: the limit is"), "{page}");
    assert!(page.contains("The file is unchanged"), "{page}");

    let wrong_type = replace_with(&staff, &file.id, "pixel.png", PNG).await;
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(wrong_type.text().await.expect("page").contains("image/png"));

    let empty = replace_with(&staff, &file.id, "empty.txt", b"").await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        empty
            .text()
            .await
            .expect("page")
            .contains("the file is empty")
    );

    let token = staff.csrf_token(&format!("/admin/files/{}", file.id)).await;
    let no_file = replace(&staff, &file.id, &[Part::Text("csrf_token", &token)]).await;
    assert_eq!(no_file.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        no_file
            .text()
            .await
            .expect("page")
            .contains("Choose the file")
    );

    let two = replace(
        &staff,
        &file.id,
        &[
            Part::Text("csrf_token", &token),
            Part::File("a.txt", b"one"),
            Part::File("b.txt", b"two"),
        ],
    )
    .await;
    assert_eq!(two.status(), StatusCode::BAD_REQUEST);

    let after = row(&app, &file.id);
    assert_eq!(
        (
            &after.storage_key,
            after.size,
            &after.sha256,
            &after.original_name
        ),
        (
            &file.storage_key,
            file.size,
            &file.sha256,
            &file.original_name
        )
    );
    assert_eq!(
        app.stored_objects(),
        objects,
        "nothing stored, nothing removed"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(app.temp_files().is_empty(), "{:?}", app.temp_files());
    let download = staff.get(&format!("/files/{}/download", file.id)).await;
    assert_eq!(
        download.bytes().await.expect("body").as_ref(),
        b"short notes"
    );
}

#[tokio::test]
async fn replace_needs_the_csrf_token_and_staff() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(
        &app,
        &staff,
        "notes.txt",
        b"short notes",
        "authenticated",
        None,
        &[],
    )
    .await;

    let no_token = replace(&staff, &file.id, &[Part::File("evil.txt", b"replaced")]).await;
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);

    let paul = app.logged_in("paul", Role::User).await;
    let token = paul.csrf_token("/files").await;
    let plain = replace(
        &paul,
        &file.id,
        &[
            Part::Text("csrf_token", &token),
            Part::File("evil.txt", b"replaced"),
        ],
    )
    .await;
    assert_eq!(plain.status(), StatusCode::FORBIDDEN);

    let unknown = FileId::generate();
    let token = staff.csrf_token("/files").await;
    let missing = replace(
        &staff,
        &unknown,
        &[
            Part::Text("csrf_token", &token),
            Part::File("a.txt", b"bytes"),
        ],
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let after = row(&app, &file.id);
    assert_eq!(after.storage_key, file.storage_key);
    assert_eq!(after.sha256, file.sha256);
    assert_eq!(app.stored_objects().len(), 1);
}

#[tokio::test]
async fn the_owner_changes_to_an_active_user_and_is_recorded() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let paul = app.add_user("paul", Role::User);
    app.add_user("olga", Role::User);
    {
        let mut conn = app.db.get().expect("connection");
        User::set_active(&mut conn, &Username::parse("olga").unwrap(), false).expect("deactivate");
    }
    let file = upload_file(&app, &staff, "notes.txt", b"notes", "owner", None, &[]).await;

    for (owner, why) in [
        ("ghost", "unknown"),
        ("olga", "inactive"),
        ("no such", "malformed"),
    ] {
        let refused = edit(
            &staff,
            &file.id,
            &[("title", "Notes"), ("access", "owner"), ("owner", owner)],
        )
        .await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{why}");
        let page = refused.text().await.expect("page");
        assert!(page.contains("no active user named"), "{why}: {page}");
        assert_eq!(row(&app, &file.id).owner_id, file.owner_id, "{why}");
        assert_eq!(
            row(&app, &file.id).title,
            file.title,
            "{why}: nothing saved"
        );
    }

    let saved = edit(
        &staff,
        &file.id,
        &[("title", "Notes"), ("access", "owner"), ("owner", "paul")],
    )
    .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(row(&app, &file.id).owner_id, paul.id);
    let recorded = wait_for_events(&app, "owner", 1).await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].detail.as_deref(), Some("owner: stella → paul"));
    assert_eq!(recorded[0].file_id.as_deref(), Some(file.id.as_str()));
    // The new owner may now download an owner-only file.
    let paul_browser = app.browser();
    assert_eq!(
        paul_browser
            .login("paul", crate::helpers::PASSWORD, None)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        paul_browser
            .get(&format!("/files/{}/download", file.id))
            .await
            .status(),
        StatusCode::OK
    );
    let page = staff.get_text(&format!("/admin/files/{}", file.id)).await;
    assert!(
        page.contains("name=\"owner\" type=\"text\" value=\"paul\""),
        "{page}"
    );

    // A form without the field (an older page) keeps the owner; the same owner records nothing.
    let kept = edit(
        &staff,
        &file.id,
        &[("title", "Notes 2"), ("access", "owner")],
    )
    .await;
    assert_eq!(kept.status(), StatusCode::SEE_OTHER);
    assert_eq!(row(&app, &file.id).owner_id, paul.id);
    edit(
        &staff,
        &file.id,
        &[("title", "Notes 3"), ("access", "owner"), ("owner", "paul")],
    )
    .await;
    // Events are written in order: once this later edit is in, any owner event before it is.
    edit(
        &staff,
        &file.id,
        &[("title", "Notes 4"), ("access", "owner")],
    )
    .await;
    assert_eq!(wait_for_events(&app, "edit", 4).await.len(), 4);
    let owner_events = events(&app)
        .into_iter()
        .filter(|e| e.event == "owner")
        .count();
    assert_eq!(owner_events, 1, "no change, no owner event");

    let plain = app.logged_in("pia", Role::User).await;
    let token = plain.csrf_token("/files").await;
    let refused = plain
        .post_form(
            &format!("/admin/files/{}", file.id),
            &[
                ("csrf_token", &token),
                ("title", "x"),
                ("access", "owner"),
                ("owner", "pia"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(row(&app, &file.id).owner_id, paul.id);
}

#[tokio::test]
async fn readers_are_named_in_a_text_field_and_unknown_names_are_refused() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    app.add_user("paul", Role::User);
    app.add_user("anna.b", Role::User);
    let file = upload_file(&app, &staff, "notes.txt", b"notes", "owner", None, &[]).await;

    let saved = edit(
        &staff,
        &file.id,
        &[
            ("title", "Notes"),
            ("access", "users"),
            ("readers", "paul, anna.b\npaul"),
        ],
    )
    .await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(readers(&app, &file.id), ["anna.b", "paul"]);
    let page = staff.get_text(&format!("/admin/files/{}", file.id)).await;
    assert!(
        page.contains(">anna.b, paul</textarea>"),
        "the field shows them"
    );
    assert!(
        !page.contains("type=\"checkbox\" name=\"users\""),
        "no checkbox per user"
    );

    let refused = edit(
        &staff,
        &file.id,
        &[
            ("title", "Notes"),
            ("access", "users"),
            ("readers", "paul, ghost"),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .expect("page")
            .contains("There is no user named “ghost”")
    );
    assert_eq!(readers(&app, &file.id), ["anna.b", "paul"], "nothing lost");

    // Another rule ignores the field: it keeps no list.
    let other = edit(
        &staff,
        &file.id,
        &[
            ("title", "Notes"),
            ("access", "staff"),
            ("readers", "paul, ghost"),
        ],
    )
    .await;
    assert_eq!(other.status(), StatusCode::SEE_OTHER);
    assert!(readers(&app, &file.id).is_empty());

    // The upload form takes the same field.
    let token = staff.csrf_token("/admin/files/new").await;
    let response = staff
        .post_multipart(&[
            Part::Text("csrf_token", &token),
            Part::Text("access", "users"),
            Part::Text("readers", "anna.b,paul"),
            Part::File("shared.txt", b"shared"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let id = FileId::parse(location(&response).rsplit('/').next().unwrap()).unwrap();
    assert_eq!(readers(&app, &id), ["anna.b", "paul"]);
}

#[tokio::test]
async fn the_username_search_is_for_staff_and_finds_active_users_only() {
    let app = spawn_app().await;
    // Made before anyone logs in, for the reason the upload page's test gives.
    for name in ["paula", "Paul_x", "opaul", "anna"] {
        app.add_user(name, Role::User);
    }
    for i in 0..25 {
        app.add_user(&format!("many{i:02}"), Role::User);
    }
    let staff = app.logged_in("stella", Role::Staff).await;
    app.add_user("paulinactive", Role::User);
    {
        let mut conn = app.db.get().expect("connection");
        User::set_active(&mut conn, &Username::parse("paulinactive").unwrap(), false).unwrap();
    }
    let found = |q: &'static str| {
        let staff = &staff;
        async move {
            let response = staff.get(&format!("/admin/usernames?q={q}")).await;
            assert_eq!(response.status(), StatusCode::OK);
            let json: serde_json::Value = response.json().await.expect("json");
            let mut names: Vec<String> = json["users"]
                .as_array()
                .expect("a list")
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            // Sorted here as well: PostgreSQL's collation may order case differently.
            names.sort();
            names
        }
    };
    assert_eq!(found("PAUL").await, ["Paul_x", "opaul", "paula"]);
    assert_eq!(found("l_").await, ["Paul_x"], "`_` is literal");
    assert_eq!(found("%25").await, Vec::<String>::new(), "`%` is literal");
    assert!(found("").await.is_empty());

    assert_eq!(found("many").await.len(), 20, "a bounded answer");

    let plain = app.logged_in("pia", Role::User).await;
    assert_eq!(
        plain.get("/admin/usernames?q=p").await.status(),
        StatusCode::FORBIDDEN
    );
    let anonymous = app.browser().get("/admin/usernames?q=p").await;
    assert_ne!(anonymous.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_upload_with_known_content_is_stored_and_points_to_the_earlier_file() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let first = upload_file(
        &app,
        &staff,
        "report.txt",
        b"the same bytes",
        "staff",
        None,
        &[],
    )
    .await;

    // The upload page's script: a `duplicates` entry with a link.
    let token = staff.csrf_token("/admin/files/new").await;
    let json: serde_json::Value = staff
        .upload_request(multipart_body(&[
            Part::Text("csrf_token", &token),
            Part::Text("access", "staff"),
            Part::File("copy.txt", b"the same bytes"),
            Part::File("other.txt", b"different bytes"),
        ]))
        .header("accept", "application/json")
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    let copy = &json["files"][0];
    assert_eq!(copy["stored"], true);
    assert_eq!(copy["duplicates"][0]["id"], first.id.as_str());
    assert_eq!(
        copy["duplicates"][0]["url"],
        format!("/admin/files/{}", first.id)
    );
    assert!(json["files"][1].get("duplicates").is_none(), "{json}");

    // Without the script: the new file's page warns, with a link to the earlier one.
    let second = upload_file(
        &app,
        &staff,
        "again.txt",
        b"the same bytes",
        "staff",
        None,
        &[],
    )
    .await;
    assert_eq!(app.file_rows().len(), 4, "every upload is stored");
    let page = staff.get_text(&format!("/admin/files/{}", second.id)).await;
    assert!(
        page.contains("Another file has the same content"),
        "the flash"
    );
    assert!(page.contains("The same content (SHA-256) is also stored as"));
    assert!(page.contains(&format!("href=\"/admin/files/{}\"", first.id)));
    let unique = app
        .file_rows()
        .into_iter()
        .find(|f| f.original_name == "other.txt")
        .unwrap();
    let page = staff.get_text(&format!("/admin/files/{}", unique.id)).await;
    assert!(!page.contains("is also stored as"));
}

#[tokio::test]
async fn the_page_previews_safe_types_inline_and_offers_the_link_to_copy() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let image = upload_file(&app, &staff, "pixel.png", PNG, "staff", None, &[]).await;
    let response = staff.get(&format!("/admin/files/{}", image.id)).await;
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("img-src 'self'") && csp.contains("media-src 'self'"),
        "{csp}"
    );
    let page = response.text().await.unwrap();
    // An image with thumbnails is previewed by its medium one (README: "Thumbnails").
    let thumbnail = format!("/files/{}/thumbnail?size=medium", image.id);
    assert!(
        page.contains(&format!("<img src=\"{thumbnail}\"")),
        "{page}"
    );
    assert_eq!(staff.get(&thumbnail).await.status(), StatusCode::OK);
    let preview = format!("/files/{}/download?inline=1", image.id);
    let shown = staff.get(&preview).await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert!(
        shown.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert!(
        page.contains(&format!(
            "id=\"file-link\" type=\"text\" readonly value=\"{}/files/{}/download\"",
            app.base, image.id
        )),
        "{page}"
    );
    assert!(page.contains("data-copy=\"file-link\""));

    let pdf = upload_file(
        &app,
        &staff,
        "a.pdf",
        b"%PDF-1.7 a document",
        "staff",
        None,
        &[],
    )
    .await;
    let response = staff.get(&format!("/admin/files/{}", pdf.id)).await;
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("frame-src 'self'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let page = response.text().await.unwrap();
    let preview = format!("/files/{}/download?inline=1", pdf.id);
    assert!(
        page.contains(&format!("<iframe src=\"{preview}\"")),
        "{page}"
    );
    assert!(
        page.contains(&format!("href=\"{preview}\"")),
        "a link for browsers without a PDF viewer"
    );
    // Only a page of this site may frame the PDF shown inline, and only that answer.
    let framed = staff.get(&preview).await;
    assert_eq!(framed.status(), StatusCode::OK);
    assert_eq!(framed.headers()["x-frame-options"], "SAMEORIGIN");
    let policy = framed.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(policy.contains("frame-ancestors 'self'"), "{policy}");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert_eq!(framed.headers()["cache-control"], "private, no-cache");
    for refused_frames in [
        format!("/files/{}/download", pdf.id),
        format!("/files/{}/download?inline=1", image.id),
    ] {
        let answer = staff.get(&refused_frames).await;
        assert_eq!(answer.status(), StatusCode::OK, "{refused_frames}");
        assert_eq!(
            answer.headers()["x-frame-options"],
            "DENY",
            "{refused_frames}"
        );
        let policy = answer.headers()["content-security-policy"]
            .to_str()
            .unwrap();
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{refused_frames}: {policy}"
        );
    }

    // Markup is never shown inline: no preview at all.
    let html = upload_file(
        &app,
        &staff,
        "page.html",
        b"<!doctype html><p>hi",
        "staff",
        None,
        &[],
    )
    .await;
    let page = staff.get_text(&format!("/admin/files/{}", html.id)).await;
    assert!(!page.contains("section class=\"preview\""));
    assert!(!page.contains("inline=1"));
}

#[tokio::test]
async fn the_upload_page_puts_the_files_first_and_scales_its_pickers() {
    let app = spawn_app().await;
    // Made before anyone logs in: each blocks the test's thread (the app's too) for a hash,
    // long enough under load for an idle keep-alive connection to be closed.
    for i in 0..10 {
        app.add_user(&format!("user{i:02}"), Role::User);
    }
    let staff = app.logged_in("stella", Role::Staff).await;
    let page = staff.get_text("/admin/files/new").await;
    let file_input = page
        .find("name=\"file\" type=\"file\"")
        .expect("the file input");
    let settings = page.find("name=\"access\"").expect("the rule");
    assert!(file_input < settings, "the files come first");
    assert!(page.contains("<textarea id=\"readers\" name=\"readers\""));
    assert!(page.contains("name=\"owner\" type=\"text\" value=\"stella\""));
    assert!(!page.contains("user07"), "no element per user: {page}");
    assert!(page.contains("<script src=\"/static/pickers.js\" defer></script>"));

    let script = staff.get("/static/pickers.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(script.text().await.unwrap().contains("/admin/usernames?q="));

    // A no-JS form with the files before the settings is read to the end and checked there:
    // refused for its settings, it stores nothing.
    let token = staff.csrf_token("/admin/files/new").await;
    let refused = staff
        .post_multipart(&[
            Part::Text("csrf_token", &token),
            Part::File("a.txt", b"some bytes"),
            Part::Text("access", "users"),
            Part::Text("readers", "ghost"),
        ])
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("There is no user named “ghost”")
    );
    app.assert_nothing_stored();
    let stored = staff
        .post_multipart(&[
            Part::Text("csrf_token", &token),
            Part::File("a.txt", b"some bytes"),
            Part::Text("access", "users"),
            Part::Text("readers", "user07 user08"),
        ])
        .await;
    assert_eq!(stored.status(), StatusCode::SEE_OTHER);
    let id = FileId::parse(location(&stored).rsplit('/').next().unwrap()).unwrap();
    assert_eq!(readers(&app, &id), ["user07", "user08"]);
}
