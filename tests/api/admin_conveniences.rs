//! What makes the admin pleasant without a browser: results as JSON for the upload page's
//! script, sortable lists, a confirmation before delete, preview links for safe types.

use private_media::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{PNG, Part, multipart_body, spawn_app, upload_file};

#[tokio::test]
async fn the_upload_script_gets_one_json_result_per_file() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;
    let post = |parts: Vec<Part<'static>>| {
        staff
            .upload_request(multipart_body(&parts))
            .header("accept", "application/json")
            .send()
    };
    let token: &'static str = Box::leak(token.into_boxed_str());
    let stored = post(vec![
        Part::Text("csrf_token", token),
        Part::Text("access", "staff"),
        Part::File("notes.txt", b"some notes"),
    ])
    .await
    .expect("post");
    assert_eq!(stored.status(), StatusCode::CREATED);
    let json: serde_json::Value = stored.json().await.expect("json");
    let file = &json["files"][0];
    assert_eq!(file["name"], "notes.txt");
    assert_eq!(file["stored"], true);
    let id = file["id"].as_str().expect("an id");
    assert_eq!(file["url"], format!("/admin/files/{id}"));

    let refused = post(vec![
        Part::Text("csrf_token", token),
        Part::Text("access", "staff"),
        Part::File("empty.txt", b""),
    ])
    .await
    .expect("post");
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let json: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(json["files"][0]["stored"], false);
    assert_eq!(json["files"][0]["reason"], "the file is empty");
    assert_eq!(app.file_rows().len(), 1);

    // The page loads the script from /static, and the script is served.
    let page = staff.get_text("/admin/files/new").await;
    assert!(page.contains(r#"<script src="/static/upload.js" defer></script>"#));
    let script = staff.get("/static/upload.js").await;
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/javascript")
    );
}

#[tokio::test]
async fn lists_sort_by_name_size_and_date() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    for (name, size) in [("bravo.txt", 300), ("alpha.txt", 100), ("charlie.txt", 200)] {
        upload_file(
            &app,
            &staff,
            name,
            &vec![b'x'; size],
            "authenticated",
            None,
            &[],
        )
        .await;
    }
    let order = |page: &str| -> Vec<&'static str> {
        let mut found: Vec<(usize, &'static str)> = ["alpha.txt", "bravo.txt", "charlie.txt"]
            .into_iter()
            .map(|n| (page.find(&format!(">{n}</a>")).expect(n), n))
            .collect();
        found.sort();
        found.into_iter().map(|(_, n)| n).collect()
    };
    for base in ["/admin/files", "/files"] {
        let newest = staff.get_text(base).await;
        assert_eq!(
            order(&newest),
            ["charlie.txt", "alpha.txt", "bravo.txt"],
            "{base}"
        );
        let by_name = staff.get_text(&format!("{base}?sort=name")).await;
        assert_eq!(
            order(&by_name),
            ["alpha.txt", "bravo.txt", "charlie.txt"],
            "{base}"
        );
        assert!(by_name.contains(r#"aria-sort="ascending""#));
        assert!(
            by_name.contains(&format!(r#"href="{base}?page=1&#38;sort=-name""#)),
            "{by_name}"
        );
        let by_size = staff.get_text(&format!("{base}?sort=-size")).await;
        assert_eq!(
            order(&by_size),
            ["bravo.txt", "charlie.txt", "alpha.txt"],
            "{base}"
        );
        let small_first = staff.get_text(&format!("{base}?sort=size")).await;
        assert_eq!(
            order(&small_first),
            ["alpha.txt", "charlie.txt", "bravo.txt"]
        );
        let oldest = staff.get_text(&format!("{base}?sort=oldest")).await;
        assert_eq!(order(&oldest), ["bravo.txt", "alpha.txt", "charlie.txt"]);
        // A stale or made-up value is the default order, not an error.
        let odd = staff.get(&format!("{base}?sort=%27;drop")).await;
        assert_eq!(odd.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn delete_asks_first_and_only_the_post_deletes() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "keep-me.txt", b"data", "staff", None, &[]).await;
    let detail = staff.get_text(&format!("/admin/files/{}", file.id)).await;
    assert!(detail.contains(&format!(r#"href="/admin/files/{}/delete""#, file.id)));
    let confirm = staff.get(&format!("/admin/files/{}/delete", file.id)).await;
    assert_eq!(confirm.status(), StatusCode::OK);
    let page = confirm.text().await.expect("page");
    assert!(page.contains("Delete “keep-me.txt”?"), "{page}");
    assert!(page.contains("Yes, delete it"));
    assert_eq!(app.file_rows().len(), 1, "asking deletes nothing");
    assert_eq!(app.stored_objects().len(), 1);
    let plain = app.logged_in("paul", Role::User).await;
    assert_eq!(
        plain
            .get(&format!("/admin/files/{}/delete", file.id))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_files_page_offers_previews_for_safe_types_only() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let png = upload_file(&app, &staff, "pic.png", PNG, "authenticated", None, &[]).await;
    let html = upload_file(
        &app,
        &staff,
        "page.html",
        b"<!doctype html><html><body>hi</body></html>",
        "authenticated",
        None,
        &[],
    )
    .await;
    let paul = app.logged_in("paul", Role::User).await;
    let page = paul.get_text("/files").await;
    assert!(page.contains(&format!("/files/{}/download?inline=1", png.id)));
    assert!(!page.contains(&format!("/files/{}/download?inline=1", html.id)));
    assert!(page.contains(">PNG image<"), "{page}");
}
