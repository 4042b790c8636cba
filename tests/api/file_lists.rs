//! The two file lists' filters, orders, pages and rows (README: "The admin"): filters by
//! access rule, owner, type family, storage and upload date that survive search, order and
//! page in the URL; type and owner orders; numbered pages and a page size; rows with a
//! download link, one size format, `<time>` in UTC, the name only when it differs from the
//! title, and who may read.

use diesel::prelude::*;
use private_media::db::schema::files;
use private_media::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{Browser, PNG, Part, TestApp, spawn_app, spawn_app_with, upload_file};

/// The first bytes of a ZIP file: what a `.docx` and a `.zip` both start with.
const ZIP: &[u8] = b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00a";

/// The titles of the list's rows, in order.
fn titles(page: &str) -> Vec<String> {
    // A thumbnail or a type icon comes first in the cell, then the title's link.
    page.split(r#"<td data-label="Title" class="title">"#)
        .skip(1)
        .filter_map(|cell| {
            cell.split_once(r#"<a href="/admin/files/"#)
                .map(|(_, rest)| rest)
        })
        .chain(
            page.split(r#"<td data-label="File" class="title">"#)
                .skip(1)
                .filter_map(|cell| cell.split_once(r#"<a href="/files/"#).map(|(_, rest)| rest)),
        )
        .filter_map(|rest| {
            let start = rest.find('>')? + 1;
            let end = rest[start..].find('<')? + start;
            Some(rest[start..end].to_owned())
        })
        .collect()
}

/// Uploads `names` (each its own title) with `bytes`, as one form.
async fn upload_many(staff: &Browser, access: &str, names: &[String], bytes: &[u8]) {
    let token = staff.csrf_token("/admin/files/new").await;
    let mut parts = vec![
        Part::Text("csrf_token", &token),
        Part::Text("access", access),
    ];
    parts.extend(names.iter().map(|n| Part::File(n, bytes)));
    let response = staff.post_multipart(&parts).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

async fn four_kinds(app: &TestApp, staff: &Browser) {
    upload_file(app, staff, "letter.docx", ZIP, "staff", None, &[]).await;
    upload_file(app, staff, "photos.zip", ZIP, "staff", None, &[]).await;
    upload_file(app, staff, "pixel.png", PNG, "staff", None, &[]).await;
    upload_file(app, staff, "notes.txt", b"some notes", "staff", None, &[]).await;
}

#[tokio::test]
async fn type_labels_and_the_type_filter_read_the_name_and_the_bytes_together() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    four_kinds(&app, &staff).await;
    let page = staff.get_text("/admin/files").await;
    for label in ["Word document", "ZIP archive", "PNG image", "Text"] {
        assert!(
            page.contains(&format!(">{label}</span>")),
            "{label}: {page}"
        );
    }
    for (family, wanted) in [
        ("document", &["letter.docx", "notes.txt"][..]),
        ("archive", &["photos.zip"]),
        ("image", &["pixel.png"]),
        ("video", &[]),
    ] {
        let page = staff.get_text(&format!("/admin/files?type={family}")).await;
        let mut found = titles(&page);
        found.sort();
        assert_eq!(found, wanted, "{family}");
        assert!(
            page.contains(&format!(r#"<option value="{family}" selected>"#)),
            "{family}"
        );
    }
    // An unknown family is no filter, as a stale link shows the whole list.
    let page = staff.get_text("/admin/files?type=spreadsheet").await;
    assert_eq!(titles(&page).len(), 4);
}

#[tokio::test]
async fn rows_written_before_the_type_column_are_classified_at_start() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    four_kinds(&app, &staff).await;
    {
        let mut conn = app.db.get().expect("connection");
        diesel::update(files::table)
            .set(files::type_family.eq(""))
            .execute(&mut conn)
            .expect("unclassify");
    }
    let page = staff.get_text("/admin/files?type=document").await;
    assert!(titles(&page).is_empty());
    app.db.run_migrations().expect("start-up work");
    let page = staff.get_text("/admin/files?type=document").await;
    let mut found = titles(&page);
    found.sort();
    assert_eq!(found, ["letter.docx", "notes.txt"]);
}

#[tokio::test]
async fn filters_by_access_owner_and_upload_date() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    app.add_user("olivia", Role::User);
    app.add_user("paul", Role::User);
    upload_file(&app, &staff, "mine.txt", b"a", "owner", Some("olivia"), &[]).await;
    upload_file(
        &app,
        &staff,
        "shared.txt",
        b"b",
        "users",
        Some("olivia"),
        &["paul"],
    )
    .await;
    let old = upload_file(&app, &staff, "old.txt", b"c", "authenticated", None, &[]).await;
    upload_file(&app, &staff, "staff.txt", b"d", "staff", None, &[]).await;
    {
        let mut conn = app.db.get().expect("connection");
        let long_ago = chrono::Utc::now().naive_utc() - chrono::Duration::days(400);
        diesel::update(files::table.filter(files::id.eq(old.id.as_str())))
            .set(files::uploaded_at.eq(long_ago))
            .execute(&mut conn)
            .expect("age a file");
    }
    let cases: &[(&str, &[&str])] = &[
        ("access=owner", &["mine.txt"]),
        ("access=users", &["shared.txt"]),
        ("access=staff", &["staff.txt"]),
        ("owner=olivia", &["mine.txt", "shared.txt"]),
        ("owner=olivia&access=users", &["shared.txt"]),
        ("owner=stella", &["old.txt", "staff.txt"]),
        ("owner=nobody-here", &[]),
        ("owner=not%20a%20name%2F", &[]),
        ("uploaded=today", &["mine.txt", "shared.txt", "staff.txt"]),
        ("uploaded=7d", &["mine.txt", "shared.txt", "staff.txt"]),
        ("uploaded=year", &["mine.txt", "shared.txt", "staff.txt"]),
        (
            "uploaded=forever",
            &["mine.txt", "old.txt", "shared.txt", "staff.txt"],
        ),
        (
            "storage=local",
            &["mine.txt", "old.txt", "shared.txt", "staff.txt"],
        ),
        (
            "storage=elsewhere",
            &["mine.txt", "old.txt", "shared.txt", "staff.txt"],
        ),
    ];
    for (filter, wanted) in cases {
        let page = staff.get_text(&format!("/admin/files?{filter}")).await;
        let mut found = titles(&page);
        found.sort();
        assert_eq!(found, *wanted, "{filter}");
        if wanted.is_empty() {
            assert!(page.contains("No file matches this search and these filters."));
        }
    }
    // With one storage, no storage menu.
    assert!(
        !page_of(&staff, "/admin/files")
            .await
            .contains(r#"name="storage""#)
    );
    // The access column names who may read.
    let page = staff.get_text("/admin/files").await;
    assert!(page.contains(">olivia, paul</span>"), "{page}");
    assert!(page.contains(">Everyone logged in</span>"));
    assert!(page.contains(">Staff</span>"));
}

async fn page_of(browser: &Browser, path: &str) -> String {
    browser.get_text(path).await
}

#[tokio::test]
async fn with_two_storages_the_list_filters_by_storage() {
    let app = spawn_app_with(|s| {
        let local = s.storages["local"].clone();
        s.storages.insert("archive".into(), local);
    })
    .await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let moved = upload_file(&app, &staff, "moved.txt", b"m", "staff", None, &[]).await;
    upload_file(&app, &staff, "stayed.txt", b"s", "staff", None, &[]).await;
    {
        let mut conn = app.db.get().expect("connection");
        diesel::update(files::table.filter(files::id.eq(moved.id.as_str())))
            .set(files::storage.eq("archive"))
            .execute(&mut conn)
            .expect("move a row");
    }
    let page = staff.get_text("/admin/files?storage=archive").await;
    assert_eq!(titles(&page), ["moved.txt"]);
    assert!(page.contains(r#"<option value="archive" selected>archive</option>"#));
    assert_eq!(
        titles(&staff.get_text("/admin/files?storage=local").await),
        ["stayed.txt"]
    );
}

#[tokio::test]
async fn filters_search_order_and_page_survive_each_other_in_every_link() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let names: Vec<String> = (0..12).map(|i| format!("report-{i:02}.txt")).collect();
    upload_many(&staff, "staff", &names, b"text").await;
    upload_file(&app, &staff, "report.png", PNG, "staff", None, &[]).await;
    let here = "/admin/files?q=report&type=document&sort=name&per_page=10&access=staff";
    let page = staff.get_text(here).await;
    assert_eq!(
        titles(&page),
        names[..10].iter().map(String::as_str).collect::<Vec<_>>()
    );
    let next = "/admin/files?page=2&#38;sort=name&#38;per_page=10&#38;access=staff&#38;type=document&#38;q=report";
    assert!(
        page.contains(&format!(r#"href="{next}" rel="next""#)),
        "{page}"
    );
    // A column's header keeps the rest and starts again at page 1.
    assert!(page.contains(
        r#"href="/admin/files?page=1&#38;sort=-size&#38;per_page=10&#38;access=staff&#38;type=document&#38;q=report""#
    ));
    // The form shows what is chosen, so sending it again keeps it.
    assert!(page.contains(r#"name="q" type="search" value="report""#));
    assert!(page.contains(r#"<option value="name" selected>"#));
    assert!(page.contains(r#"<option value="10" selected>"#));
    assert!(page.contains(r#"<option value="staff" selected>"#));
    // The bulk form comes back to this very page.
    assert!(page.contains(&format!(
        r#"name="back" value="{}""#,
        "/admin/files?page=1&#38;sort=name&#38;per_page=10&#38;access=staff&#38;type=document&#38;q=report"
    )));
    let second = staff.get_text(&next.replace("&#38;", "&")).await;
    assert_eq!(
        titles(&second),
        names[10..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(second.contains("Page 2 of 2 · 12 files"));
}

#[tokio::test]
async fn the_page_size_is_one_offered_and_anything_else_is_the_default() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let names: Vec<String> = (0..30).map(|i| format!("f{i:02}.txt")).collect();
    upload_many(&staff, "staff", &names, b"x").await;
    for (per_page, rows) in [
        ("10", 10),
        ("50", 30),
        ("25", 25),
        ("7", 25),
        ("1000", 25),
        ("-1", 25),
        ("lots", 25),
        ("", 25),
    ] {
        let page = staff
            .get_text(&format!("/admin/files?per_page={per_page}"))
            .await;
        assert_eq!(titles(&page).len(), rows, "per_page={per_page}");
    }
    // A page past the end is the last one.
    let page = staff.get_text("/admin/files?per_page=10&page=99").await;
    assert!(page.contains("Page 3 of 3"));
}

#[tokio::test]
async fn pages_are_numbered_with_gaps() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let names: Vec<String> = (0..80).map(|i| format!("n{i:02}.txt")).collect();
    upload_many(&staff, "staff", &names, b"x").await;
    let page = staff.get_text("/admin/files?per_page=10&page=7").await;
    let pager = &page[page.find(r#"<nav class="pager""#).expect("a pager")..];
    let numbers: Vec<String> = pager
        .split("<li>")
        .skip(1)
        .map(|li| {
            if li.starts_with(r#"<span class="gap""#) {
                "…".to_owned()
            } else {
                let n = li.split("</span>").nth(1).unwrap_or("");
                n.split('<').next().unwrap_or("").to_owned()
            }
        })
        .collect();
    assert_eq!(numbers, ["1", "2", "…", "6", "7", "8"]);
    assert!(pager.contains(
        r#"<a href="/admin/files?page=7&#38;per_page=10" aria-current="page"><span class="visually-hidden">Page </span>7</a>"#
    ));
    assert!(pager.contains(r#"href="/admin/files?page=8&#38;per_page=10">"#));
    assert!(!pager.contains(r#"href="/admin/files?page=3&#38;per_page=10">"#));
}

#[tokio::test]
async fn type_and_owner_orders_sort_the_rows() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    for name in ["carol", "alice", "bob"] {
        app.add_user(name, Role::User);
    }
    upload_file(
        &app,
        &staff,
        "by-carol.txt",
        b"c",
        "staff",
        Some("carol"),
        &[],
    )
    .await;
    upload_file(
        &app,
        &staff,
        "by-alice.txt",
        b"a",
        "staff",
        Some("alice"),
        &[],
    )
    .await;
    upload_file(&app, &staff, "by-bob.txt", b"b", "staff", Some("bob"), &[]).await;
    let page = staff.get_text("/admin/files?sort=owner").await;
    assert_eq!(
        titles(&page),
        ["by-alice.txt", "by-bob.txt", "by-carol.txt"]
    );
    assert!(page.contains(r#"aria-sort="ascending"><a class="sort" href="/admin/files?page=1&#38;sort=-owner">Owner ↑"#), "{page}");
    let page = staff.get_text("/admin/files?sort=-owner").await;
    assert_eq!(
        titles(&page),
        ["by-carol.txt", "by-bob.txt", "by-alice.txt"]
    );

    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    four_kinds(&app, &staff).await;
    // Families in their order (archive, document, image), then the sniffed type.
    let page = staff.get_text("/admin/files?sort=type").await;
    let order = titles(&page);
    assert_eq!(order[0], "photos.zip");
    assert_eq!(order[3], "pixel.png");
    let page = staff.get_text("/admin/files?sort=-type").await;
    let reversed = titles(&page);
    assert_eq!(reversed[0], "pixel.png");
    assert_eq!(reversed[3], "photos.zip");
}

#[tokio::test]
async fn admin_rows_have_a_download_link_one_size_format_utc_times_and_no_twin_name() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let same = upload_file(&app, &staff, "plain.txt", &[b'x'; 2048], "staff", None, &[]).await;
    let token = staff.csrf_token("/admin/files/new").await;
    let response = staff
        .post_multipart(&[
            Part::Text("csrf_token", &token),
            Part::Text("title", "Quarterly figures"),
            Part::Text("access", "staff"),
            Part::File("q3.txt", &[b'y'; 1536]),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = staff.get_text("/admin/files").await;
    assert!(page.contains(&format!(
        r#"<a href="/files/{id}/download" download aria-describedby="title-{id}">Download</a>"#,
        id = same.id
    )));
    // The name under the title only when they differ; no Name column.
    assert!(
        page.contains(r#">Quarterly figures</a><span class="name">q3.txt</span>"#),
        "{page}"
    );
    assert!(page.contains(&format!(
        r#"href="/admin/files/{id}" id="title-{id}">plain.txt</a></td>"#,
        id = same.id
    )));
    assert!(!page.contains(">Name</th>"));
    assert!(page.contains(">2 KiB</td>") && page.contains(">1.5 KiB</td>"));
    let iso = same.uploaded_at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let utc = same.uploaded_at.format("%Y-%m-%d %H:%M UTC").to_string();
    assert!(
        page.contains(&format!(r#"<time datetime="{iso}">{utc}</time>"#)),
        "{page}"
    );
    assert!(page.contains(r#"<script src="/static/time.js" defer></script>"#));
    // Every value of a row carries its label for the phone layout.
    for label in ["Title", "Size", "Type", "Owner", "Access", "Uploaded"] {
        assert!(
            page.contains(&format!(r#"data-label="{label}""#)),
            "{label}"
        );
    }
    let script = staff.get("/static/time.js").await;
    assert_eq!(script.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_readers_list_filters_and_sorts_what_a_user_may_read_and_nothing_more() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let user = app.logged_in("paul", Role::User).await;
    upload_file(&app, &staff, "pixel.png", PNG, "authenticated", None, &[]).await;
    upload_file(&app, &staff, "notes.txt", b"n", "users", None, &["paul"]).await;
    upload_file(&app, &staff, "secret.txt", b"s", "staff", None, &[]).await;
    let page = user.get_text("/files").await;
    let mut all = titles(&page);
    all.sort();
    assert_eq!(all, ["notes.txt", "pixel.png"]);
    assert_eq!(
        titles(&user.get_text("/files?type=image").await),
        ["pixel.png"]
    );
    assert_eq!(
        titles(&user.get_text("/files?type=document").await),
        ["notes.txt"]
    );
    assert_eq!(
        titles(&user.get_text("/files?sort=-name").await),
        ["pixel.png", "notes.txt"]
    );
    // The admin's filters are not offered here, and their fields change nothing.
    assert!(!page.contains(r#"name="access""#));
    assert!(!page.contains(r#"name="ids""#));
    let mut found = titles(&user.get_text("/files?access=staff").await);
    found.sort();
    assert_eq!(found, ["notes.txt", "pixel.png"]);
    let page = user.get_text("/files?type=video").await;
    assert!(page.contains("No file matches this search and these filters."));
    // And nobody but staff reaches the admin list.
    assert_eq!(
        user.get("/admin/files?type=image").await.status(),
        StatusCode::FORBIDDEN
    );
}
