//! User-chosen text in pages: bidi controls and other invisible characters are shown as
//! visible `[U+XXXX]` markers, so a name cannot fake its extension.

use private_media::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{Part, spawn_app, spawn_app_with, upload_file};

const SPOOFED: &str = "invoice\u{202E}fdp.exe";
const SHOWN: &str = "invoice[U+202E]fdp.exe";

/// `page` without its form values, which keep the stored text so that saving a form does
/// not rewrite it.
fn without_form_values(page: &str) -> String {
    let mut shown = String::with_capacity(page.len());
    let mut rest = page;
    while let Some(start) = rest.find("value=\"") {
        shown.push_str(&rest[..start]);
        let after = &rest[start + 7..];
        rest = after.find('"').map_or("", |end| &after[end + 1..]);
    }
    shown.push_str(rest);
    shown
}

fn assert_neutralised(page: &str, what: &str) {
    let page = without_form_values(page);
    assert!(!page.contains('\u{202E}'), "{what} shows a raw U+202E");
    assert!(page.contains(SHOWN), "{what} does not show {SHOWN}");
}

#[tokio::test]
async fn a_right_to_left_override_is_shown_as_a_marker_on_every_page() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let reader = app.logged_in("rita", Role::User).await;
    let file = upload_file(
        &app,
        &staff,
        SPOOFED,
        b"MZ not really a program",
        "authenticated",
        None,
        &[],
    )
    .await;
    assert_eq!(
        file.original_name, SPOOFED,
        "the stored name is kept as sent"
    );

    // The detail page right after the upload carries the flash message with the title.
    assert_neutralised(
        &staff.get_text(&format!("/admin/files/{}", file.id)).await,
        "the detail page with its flash",
    );
    assert_neutralised(&staff.get_text("/admin/files").await, "the admin list");
    assert_neutralised(
        &staff
            .get_text(&format!("/admin/files/{}/delete", file.id))
            .await,
        "the delete confirmation",
    );
    assert_neutralised(&reader.get_text("/files").await, "the user's list");
    assert_neutralised(
        &reader.get_text("/files?q=invoice%E2%80%AEfdp").await,
        "a search for it",
    );
}

#[tokio::test]
async fn a_refused_file_with_a_spoofed_name_is_neutralised_on_the_result_page() {
    let app = spawn_app_with(|s| {
        s.upload.content_types =
            vec![private_media::config::ContentTypePattern::parse("image/*").expect("pattern")]
    })
    .await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let token = staff.csrf_token("/admin/files/new").await;
    let response = staff
        .post_multipart(&[
            Part::Text("csrf_token", &token),
            Part::Text("access", "staff"),
            Part::File(SPOOFED, b"not an image"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_neutralised(&response.text().await.expect("page"), "the upload result");
    app.assert_nothing_stored();
}

#[tokio::test]
async fn a_spoofed_title_is_neutralised_after_an_edit() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "plain.txt", b"hi", "staff", None, &[]).await;
    let path = format!("/admin/files/{}", file.id);
    let token = staff.csrf_token(&path).await;
    let response = staff
        .post_form(
            &path,
            &[
                ("csrf_token", &token),
                ("title", SPOOFED),
                ("access", "staff"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = staff.get_text(&path).await;
    assert!(page.contains(&format!("<h1>{SHOWN}</h1>")), "{page}");
    // The edit field keeps the stored title, so saving again changes nothing.
    assert!(page.contains(&format!("value=\"{SPOOFED}\"")));
    assert_neutralised(&staff.get_text("/admin/files").await, "the admin list");
}

#[tokio::test]
async fn a_blank_filler_or_tag_in_a_name_is_shown_as_a_marker_in_the_lists() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let reader = app.logged_in("rita", Role::User).await;
    // U+3164 draws as a blank and U+E0041 as nothing: both hide what the name really is.
    let hidden = "report\u{3164}\u{E0041}.pdf";
    let emoji = "notes \u{2764}\u{FE0F}.txt";
    for name in [hidden, emoji] {
        upload_file(&app, &staff, name, b"some text", "authenticated", None, &[]).await;
    }
    for (page, what) in [
        (staff.get_text("/admin/files").await, "the admin list"),
        (reader.get_text("/files").await, "the user's list"),
    ] {
        let page = without_form_values(&page);
        assert!(
            page.contains("report[U+3164][U+E0041].pdf"),
            "{what} does not mark the hidden characters"
        );
        assert!(
            !page.contains('\u{3164}') && !page.contains('\u{E0041}'),
            "{what} shows a raw hidden character"
        );
        // An emoji's own presentation selector is part of how it looks: kept as it is.
        assert!(page.contains(emoji), "{what} changed the emoji name");
    }
}
