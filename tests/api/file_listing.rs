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

/// Every order, paged: the pages together are the whole list in that order, each file once
/// (the page's ids are read first, then their rows; ties in the order are broken by the id).
#[tokio::test]
async fn pages_of_every_order_cover_the_list_once_in_order() {
    use private_media::db::models::file::{FileRow, ListQuery, Sort};

    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    // Sizes and titles repeat, so ties must be broken the same way on every page.
    let files: Vec<(String, Vec<u8>)> = (0..23)
        .map(|i| (format!("Doc-{:02}.txt", i % 7), vec![b'x'; 1 + i % 4]))
        .collect();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, b)| (n.as_str(), b.as_slice()))
        .collect();
    assert_eq!(staff.upload("owner", &refs).await.status().as_u16(), 303);

    let mut conn = app.db.get().expect("connection");
    for sort in [
        Sort::Newest,
        Sort::Oldest,
        Sort::Name,
        Sort::NameDesc,
        Sort::Size,
        Sort::SizeDesc,
        Sort::Type,
        Sort::TypeDesc,
        Sort::Owner,
        Sort::OwnerDesc,
    ] {
        let query = |page, per_page| ListQuery {
            search: None,
            page,
            per_page,
            sort,
            filters: Default::default(),
        };
        let whole = FileRow::admin_page(&mut conn, &query(1, 500)).expect("whole list");
        assert_eq!(whole.items.len(), 23);
        let mut paged = Vec::new();
        for page in 1..=4 {
            let p = FileRow::admin_page(&mut conn, &query(page, 7)).expect("page");
            assert_eq!(p.pages, 4);
            paged.extend(p.items.into_iter().map(|f| f.file.id.to_string()));
        }
        let whole: Vec<String> = whole
            .items
            .into_iter()
            .map(|f| f.file.id.to_string())
            .collect();
        assert_eq!(paged, whole, "{sort:?}");
        // And the whole list is in the order asked for.
        let rows: Vec<FileRow> = whole
            .iter()
            .map(|id| {
                app.file_rows()
                    .into_iter()
                    .find(|f| f.id.to_string() == *id)
                    .expect("row")
            })
            .collect();
        let keys_sorted = |f: &dyn Fn(&FileRow, &FileRow) -> std::cmp::Ordering| {
            rows.windows(2)
                .all(|w| f(&w[0], &w[1]) != std::cmp::Ordering::Greater)
        };
        let ok = match sort {
            Sort::Newest => keys_sorted(&|a, b| b.uploaded_at.cmp(&a.uploaded_at)),
            Sort::Oldest => keys_sorted(&|a, b| a.uploaded_at.cmp(&b.uploaded_at)),
            Sort::Name => keys_sorted(&|a, b| a.title.to_lowercase().cmp(&b.title.to_lowercase())),
            Sort::NameDesc => {
                keys_sorted(&|a, b| b.title.to_lowercase().cmp(&a.title.to_lowercase()))
            }
            Sort::Size => keys_sorted(&|a, b| a.size.cmp(&b.size)),
            Sort::SizeDesc => keys_sorted(&|a, b| b.size.cmp(&a.size)),
            // One owner and one type here: the order is the ties' (the id), checked above
            // by the pages; tests/api/file_lists.rs checks these orders with several.
            Sort::Type | Sort::TypeDesc | Sort::Owner | Sort::OwnerDesc => true,
        };
        assert!(ok, "{sort:?} out of order");
    }
}
