//! Reading the audit log (README: "Audit log", "Reading it"): the superusers' page with its
//! filters and keyset pages, the CSV (quoting, formula neutralisation, every event once),
//! a file's own events on its page, and `audit export`.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use private_media::db::models::audit_event::{AuditEvent, EventRow, NewEvent};
use private_media::domain::Role;
use reqwest::StatusCode;

use crate::audit_log::{events, wait_for_events};
use crate::helpers::{Browser, TestApp, spawn_app, upload_file};

fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap()
}

/// An event of `kind` at `time`, tagged in `detail` so a test finds its own rows (the app
/// records events of its own, logins and uploads, beside them).
fn event(kind: &str, time: &str, tag: &str, fill: impl FnOnce(&mut NewEvent)) -> NewEvent {
    let mut e = NewEvent {
        at: at(time),
        event: kind.to_owned(),
        detail: Some(tag.to_owned()),
        ..NewEvent::default()
    };
    fill(&mut e);
    e
}

fn insert(app: &TestApp, new: &[NewEvent]) {
    let mut conn = app.audit_db.get().unwrap();
    AuditEvent::insert_batch(&mut conn, new).unwrap();
}

/// The ids of the events `keep` picks, newest first (as the page and the CSV order them).
fn ids_where(app: &TestApp, keep: impl Fn(&EventRow) -> bool) -> Vec<i64> {
    let mut ids: Vec<i64> = events(app)
        .iter()
        .filter(|e| keep(e))
        .map(|e| e.id)
        .collect();
    ids.reverse();
    ids
}

fn tagged(app: &TestApp, tags: &[&str]) -> Vec<i64> {
    ids_where(app, |e| {
        e.detail.as_deref().is_some_and(|d| tags.contains(&d))
    })
}

/// The ids of the rows an audit table shows, top to bottom.
fn shown_ids(page: &str) -> Vec<i64> {
    page.split("<tr id=\"event-")
        .skip(1)
        .map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap()
        })
        .collect()
}

/// The `href` of the link whose markup ends in `ending` (`rel="next">Older`), unescaped.
fn link_before(page: &str, ending: &str) -> Option<String> {
    let end = page.find(ending)?;
    let start = page[..end].rfind("href=\"")? + "href=\"".len();
    let href = &page[start..end];
    let href = href.split('"').next()?;
    Some(unescape(href))
}

/// Text of a page as the browser reads it (askama writes numeric entities).
fn unescape(html: &str) -> String {
    [
        ("&#60;", "<"),
        ("&#62;", ">"),
        ("&#34;", "\""),
        ("&#39;", "'"),
        ("&lt;", "<"),
        ("&gt;", ">"),
        ("&quot;", "\""),
        ("&#38;", "&"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(html.to_owned(), |text, (entity, c)| text.replace(entity, c))
}

async fn shown(browser: &Browser, path: &str) -> Vec<i64> {
    let response = browser.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    shown_ids(&response.text().await.unwrap())
}

/// RFC 4180, as a spreadsheet reads it: records of cells, quotes doubled inside quotes.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut cell)),
            (false, '\r') => {
                assert_eq!(chars.next(), Some('\n'), "a record ends in CRLF");
                record.push(std::mem::take(&mut cell));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => cell.push(c),
        }
    }
    assert!(cell.is_empty() && record.is_empty(), "the CSV ends in CRLF");
    records
}

fn column(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap()
}

#[tokio::test]
async fn only_superusers_read_the_log_newest_first() {
    let app = spawn_app().await;
    insert(
        &app,
        &[
            event("download", "2026-12-01 10:00:00", "older", |_| {}),
            event("edit", "2026-12-01 11:00:00", "newer", |e| {
                e.username = Some("<b>eve</b>".into());
            }),
            event("download", "2026-12-01 12:00:00", "by-link", |e| {
                e.link_id = Some("0123456789abcdef".into());
            }),
        ],
    );
    let root = app.logged_in("root", Role::Superuser).await;
    let page = root.get_text("/admin/audit").await;
    assert!(
        page.contains("href=\"/admin/audit\" aria-current=\"page\">Audit log</a>"),
        "nav"
    );
    let mine = tagged(&app, &["older", "newer", "by-link"]);
    let shown = shown_ids(&page);
    let positions: Vec<usize> = mine
        .iter()
        .map(|id| shown.iter().position(|s| s == id).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "newest first");
    assert!(page.contains("link 01234567"), "a link's events name it");
    assert!(!page.contains("link 012345678"));
    assert!(!page.contains("<b>eve"), "names are escaped");
    assert!(unescape(&page).contains("<b>eve</b>"));
    assert!(page.contains("data-label=\"Who\""));

    let staff = app.logged_in("stella", Role::Staff).await;
    let paul = app.logged_in("paul", Role::User).await;
    assert!(!staff.get_text("/admin/").await.contains("/admin/audit"));
    for path in [
        "/admin/audit",
        "/admin/audit.csv",
        "/admin/audit.csv?event=login",
    ] {
        assert_eq!(
            staff.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            paul.get(path).await.status(),
            StatusCode::FORBIDDEN,
            "{path}"
        );
        let anonymous = app.browser().get(path).await;
        assert_eq!(anonymous.status(), StatusCode::SEE_OTHER, "{path}");
        let location = crate::helpers::location(&anonymous);
        assert!(location.starts_with("/login?next="), "{location}");
    }
}

#[tokio::test]
async fn each_filter_narrows_to_its_events() {
    let app = spawn_app().await;
    let (file_a, file_b) = (
        private_media::ids::random_id(),
        private_media::ids::random_id(),
    );
    insert(
        &app,
        &[
            event("download", "2026-11-30 23:59:59", "a1", |e| {
                e.file_id = Some(file_a.clone());
                e.username = Some("anna".into());
            }),
            event("download", "2026-12-01 00:00:00", "a2", |e| {
                e.file_id = Some(file_a.clone());
                e.username = Some("bert".into());
            }),
            event("edit", "2026-12-01 23:59:59", "b1", |e| {
                e.file_id = Some(file_b.clone());
                e.username = Some("anna".into());
            }),
            event("delete", "2026-12-02 00:00:00", "b2", |e| {
                e.file_id = Some(file_b.clone());
                e.username = Some("anna".into());
            }),
        ],
    );
    let root = app.logged_in("root", Role::Superuser).await;
    let cases = [
        (format!("file={file_a}"), vec!["a1", "a2"]),
        (format!("file={file_b}"), vec!["b1", "b2"]),
        ("user=anna".to_owned(), vec!["a1", "b1", "b2"]),
        ("user=bert".to_owned(), vec!["a2"]),
        ("event=edit".to_owned(), vec!["b1"]),
        ("event=delete&user=anna".to_owned(), vec!["b2"]),
        // `to` takes in the whole of its day; `from` starts at its midnight.
        ("from=2026-12-01&to=2026-12-01".to_owned(), vec!["a2", "b1"]),
        // (bounded by `to` as well: the login of `root` below is an event of today)
        ("from=2026-12-02&to=2026-12-02".to_owned(), vec!["b2"]),
        ("to=2026-11-30".to_owned(), vec!["a1"]),
        (format!("file={file_a}&from=2026-12-01"), vec!["a2"]),
    ];
    for (query, tags) in cases {
        let path = format!("/admin/audit?{query}");
        assert_eq!(shown(&root, &path).await, tagged(&app, &tags), "{path}");
        let csv = root
            .get_text(&path.replace("/admin/audit?", "/admin/audit.csv?"))
            .await;
        let records = parse_csv(&csv);
        let id = column(&records[0], "id");
        let csv_ids: Vec<i64> = records[1..]
            .iter()
            .map(|r| r[id].parse().unwrap())
            .collect();
        assert_eq!(csv_ids, tagged(&app, &tags), "CSV of {path}");
    }
    let filtered = root.get_text("/admin/audit?user=anna&event=edit").await;
    assert!(
        filtered.contains("<option value=\"edit\" selected>"),
        "the form keeps its filters"
    );
    assert!(
        unescape(&filtered).contains("/admin/audit.csv?user=anna&event=edit"),
        "CSV link"
    );

    for (query, words) in [
        ("from=2026-02-30", "must be a date"),
        ("to=yesterday", "must be a date"),
        ("from=2026-12-05&to=2026-12-01", "is after"),
        ("event=downloads", "is not a kind of event"),
        ("file=..%2Fx", "is not a file id"),
        ("before=abc", "must be an event number"),
    ] {
        let response = root.get(&format!("/admin/audit?{query}")).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body = response.text().await.unwrap();
        assert!(body.contains(words), "{query}: {body}");
        assert!(
            body.contains("<form method=\"get\" action=\"/admin/audit\""),
            "{query}"
        );
        if query.starts_with("before") {
            continue;
        }
        let csv = root.get(&format!("/admin/audit.csv?{query}")).await;
        assert_eq!(csv.status(), StatusCode::BAD_REQUEST, "CSV {query}");
    }
}

#[tokio::test]
async fn keyset_pages_walk_every_event_exactly_once() {
    let app = spawn_app().await;
    let many: Vec<NewEvent> = (0..123)
        .map(|i| {
            event("download", "2026-12-01 12:00:00", "walk", |e| {
                e.username = Some("walker".into());
                e.status = Some(200 + i % 3);
            })
        })
        .collect();
    insert(&app, &many);
    let root = app.logged_in("root", Role::Superuser).await;
    let mut path = "/admin/audit?user=walker".to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = root.get_text(&path).await;
        pages += 1;
        let ids = shown_ids(&page);
        assert!(ids.len() <= 50, "{path}");
        assert_eq!(pages > 1, page.contains(">← Newest</a>"), "{path}");
        seen.extend(ids);
        match link_before(&page, "\" rel=\"next\">Older") {
            Some(next) => {
                assert!(
                    next.contains("user=walker") && next.contains("before="),
                    "{next}"
                );
                path = next;
            }
            None => break,
        }
        assert!(pages < 10, "the walk does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, tagged(&app, &["walk"]));
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 123);
    assert_eq!(
        link_before(&root.get_text(&path).await, "\">← Newest"),
        Some("/admin/audit?user=walker".to_owned())
    );
}

#[tokio::test]
async fn the_csv_quotes_and_neutralises_and_has_a_row_per_event() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "report.txt", b"hello", "owner", None, &[]).await;
    let download = staff
        .client
        .get(staff.url(&format!("/files/{}/download", file.id)))
        .header("user-agent", "=cmd|' /C calc'!A0")
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(wait_for_events(&app, "download", 1).await.len(), 1);
    let tricky = "a, \"quoted\"\nname.txt";
    // Past the CSV's own page size, so the stream crosses pages.
    let mut inserted: Vec<NewEvent> = (0..2100)
        .map(|_| event("download", "2026-12-01 12:00:00", "bulk", |_| {}))
        .collect();
    inserted.push(event("download", "2026-12-01 12:00:01", "tricky", |e| {
        e.file_name = Some(tricky.into());
    }));
    inserted.push(event("download", "2026-12-01 12:00:02", "formula", |e| {
        e.file_name = Some("=1+1.txt".into());
        e.username = Some("@admin".into());
    }));
    insert(&app, &inserted);

    let root = app.logged_in("root", Role::Superuser).await;
    let response = root.get("/admin/audit.csv?event=download").await;
    assert_eq!(response.status(), StatusCode::OK);
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(
        header("content-disposition").as_deref(),
        Some("attachment; filename=\"audit.csv\"")
    );
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    let text = response.text().await.unwrap();
    let records = parse_csv(&text);
    let head = &records[0];
    assert_eq!(&head[..3], ["id", "time_utc", "event"]);
    assert_eq!(
        records.iter().filter(|r| r[0] == "id").count(),
        1,
        "one header"
    );
    let (id, name, agent, user) = (
        column(head, "id"),
        column(head, "file_name"),
        column(head, "user_agent"),
        column(head, "username"),
    );
    let csv_ids: Vec<i64> = records[1..]
        .iter()
        .map(|r| r[id].parse().unwrap())
        .collect();
    assert_eq!(csv_ids, ids_where(&app, |e| e.event == "download"));
    assert_eq!(csv_ids.len(), 2103);
    assert!(records.iter().all(|r| r.len() == head.len()));
    let by_id = |tag: &str| {
        let wanted = tagged(&app, &[tag])[0].to_string();
        records.iter().find(|r| r[id] == wanted).unwrap().clone()
    };
    assert_eq!(by_id("tricky")[name], tricky);
    assert!(
        text.contains("\"a, \"\"quoted\"\"\nname.txt\""),
        "quoted per RFC 4180"
    );
    let formula = by_id("formula");
    assert_eq!(formula[name], "'=1+1.txt");
    assert_eq!(formula[user], "'@admin");
    let real = records.iter().find(|r| r[name] == "report.txt").unwrap();
    assert_eq!(real[agent], "'=cmd|' /C calc'!A0");
    assert_eq!(real[user], "stella");

    let page = root.get_text("/admin/audit?user=stella").await;
    assert!(
        unescape(&page).contains("=cmd|' /C calc'!A0"),
        "the page shows the agent as text"
    );
}

#[tokio::test]
async fn a_files_page_shows_its_downloads_and_latest_events() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "notes.txt", b"some notes", "owner", None, &[]).await;
    let url = format!("/files/{}/download", file.id);
    for _ in 0..3 {
        assert_eq!(staff.get(&url).await.status(), StatusCode::OK);
    }
    // Neither a HEAD nor a refusal is a download that sent the file.
    assert_eq!(
        staff
            .client
            .head(staff.url(&url))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.browser().get(&url).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(wait_for_events(&app, "download", 5).await.len(), 5);

    let detail = format!("/admin/files/{}", file.id);
    let page = staff.get_text(&detail).await;
    assert!(page.contains("Downloaded 3 times"), "{page}");
    let of_file = ids_where(&app, |e| e.file_id.as_deref() == Some(file.id.as_str()));
    assert_eq!(shown_ids(&page), of_file);
    assert!(
        !page.contains("All events of this file"),
        "the link is for superusers"
    );

    let older: Vec<NewEvent> = (0..30)
        .map(|_| {
            event("edit", "2026-12-01 12:00:00", "edit", |e| {
                e.file_id = Some(file.id.as_str().to_owned());
            })
        })
        .collect();
    insert(&app, &older);
    let root = app.logged_in("root", Role::Superuser).await;
    let page = root.get_text(&detail).await;
    let of_file = ids_where(&app, |e| e.file_id.as_deref() == Some(file.id.as_str()));
    assert_eq!(shown_ids(&page), of_file[..20]);
    assert!(page.contains("Downloaded 3 times"));
    assert!(page.contains(&format!(
        "<a href=\"/admin/audit?file={}\">All events of this file</a>",
        file.id
    )));
    let all = shown(&root, &format!("/admin/audit?file={}", file.id)).await;
    assert_eq!(all, of_file);
}

#[tokio::test]
async fn audit_export_prints_the_same_csv_and_refuses_a_bad_date() {
    let app = spawn_app().await;
    insert(
        &app,
        &[
            event("download", "2026-12-01 08:00:00", "x1", |e| {
                e.username = Some("exporter".into());
                e.file_name = Some("=SUM(A1:A9)".into());
            }),
            event("login_failed", "2026-12-02 09:00:00", "x2", |e| {
                e.username = Some("exporter".into());
                e.user_agent = Some("curl, \"8\"".into());
            }),
            event("download", "2026-12-03 09:00:00", "x3", |e| {
                e.username = Some("other".into());
            }),
        ],
    );
    let root = app.logged_in("root", Role::Superuser).await;
    for (args, query) in [
        (vec!["--user", "exporter"], "user=exporter"),
        (
            vec![
                "--from",
                "2026-12-01",
                "--to",
                "2026-12-02",
                "--event",
                "download",
            ],
            "from=2026-12-01&to=2026-12-02&event=download",
        ),
        (vec!["--to", "2026-12-02"], "to=2026-12-02"),
    ] {
        let mut all = vec!["audit", "export"];
        all.extend(args.iter().copied());
        let output = app.cli(&all, None);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let web = root.get_text(&format!("/admin/audit.csv?{query}")).await;
        assert_eq!(String::from_utf8(output.stdout).unwrap(), web, "{query}");
    }
    let output = app.cli(&["audit", "export", "--user", "exporter"], None);
    let records = parse_csv(&String::from_utf8(output.stdout).unwrap());
    assert_eq!(records.len(), 3);
    let id = column(&records[0], "id");
    let ids: Vec<i64> = records[1..]
        .iter()
        .map(|r| r[id].parse().unwrap())
        .collect();
    assert_eq!(ids, tagged(&app, &["x1", "x2"]));

    for bad in [vec!["--from", "2026-12-32"], vec!["--to", "12/01/2026"]] {
        let mut all = vec!["audit", "export"];
        all.extend(bad.iter().copied());
        let output = app.cli(&all, None);
        assert_eq!(output.status.code(), Some(1), "{bad:?}");
        assert!(output.stdout.is_empty(), "{bad:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("must be a date") && stderr.contains(bad[1]),
            "{stderr}"
        );
    }
}
