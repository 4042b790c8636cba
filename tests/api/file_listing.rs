//! `/files`: each user sees exactly the files the access rules allow, can search them, and
//! gets links to download them.

use private_media::domain::Role;

use crate::helpers::{Part, spawn_app};

/// Users × rules: each user's `/files` lists exactly the files the rules allow.
#[tokio::test]
async fn files_shows_each_user_exactly_what_the_rules_allow() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let owner = app.logged_in("olivia", Role::User).await;
    let listed = app.logged_in("liam", Role::User).await;
    let other = app.logged_in("otto", Role::User).await;
    let root = app.logged_in("root", Role::Superuser).await;

    let token = staff.csrf_token("/admin/files/new").await;
    for rule in ["owner", "staff", "authenticated", "users"] {
        let title = format!("file-for-{rule}");
        let mut parts = vec![
            Part::Text("csrf_token", &token),
            Part::Text("title", &title),
            Part::Text("access", rule),
            Part::Text("owner", "olivia"),
        ];
        if rule == "users" {
            parts.push(Part::Text("users", "liam"));
        }
        parts.push(Part::File("data.txt", b"data"));
        let response = staff.post_multipart(&parts).await;
        assert_eq!(response.status().as_u16(), 303, "{rule}");
    }
    // A file owned by someone else under the `users` rule, not shared with olivia.
    let response = staff
        .post_multipart(&[
            Part::Text("csrf_token", &token),
            Part::Text("title", "file-of-otto"),
            Part::Text("access", "users"),
            Part::Text("owner", "otto"),
            Part::File("otto.txt", b"otto"),
        ])
        .await;
    assert_eq!(response.status().as_u16(), 303);

    let all = ["owner", "staff", "authenticated", "users", "otto"];
    let table: [(&str, &crate::helpers::Browser, &[&str]); 5] = [
        (
            "olivia (owner)",
            &owner,
            &["owner", "authenticated", "users"],
        ),
        ("liam (listed)", &listed, &["authenticated", "users"]),
        ("otto (other)", &other, &["authenticated", "otto"]),
        ("stella (staff)", &staff, &all),
        ("root (superuser)", &root, &all),
    ];
    for (who, browser, expected) in table {
        let page = browser.get_text("/files").await;
        for rule in all {
            let title = if rule == "otto" {
                "file-of-otto".to_owned()
            } else {
                format!("file-for-{rule}")
            };
            assert_eq!(
                page.contains(&format!(">{title}<")),
                expected.contains(&rule),
                "{who} and {title}"
            );
        }
    }
}

#[tokio::test]
async fn files_searches_and_links_to_downloads() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let user = app.logged_in("alice", Role::User).await;
    staff
        .upload(
            "authenticated",
            &[("Quarterly report.pdf", b"%PDF-1.4 q"), ("notes.txt", b"n")],
        )
        .await;
    let rows = app.file_rows();
    let page = user.get_text("/files").await;
    for row in &rows {
        assert!(
            page.contains(&format!("/files/{}/download", row.id)),
            "{page}"
        );
    }
    let found = user.get_text("/files?q=quarterly").await;
    assert!(found.contains("Quarterly report.pdf"));
    assert!(!found.contains("notes.txt"));
}
