//! The audit log through HTTP (README: "Audit log"): every download decision is recorded with
//! who, what, how and from where, none is lost under a burst, and a clean stop writes what is
//! queued.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use private_media::db::models::audit_event::EventRow;
use private_media::db::schema::audit_events;
use private_media::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{TestApp, spawn_app, spawn_app_with, upload_file};

/// The events written so far, oldest first.
pub fn events(app: &TestApp) -> Vec<EventRow> {
    let mut conn = app.audit_db.get().expect("audit connection");
    audit_events::table
        .order(audit_events::id.asc())
        .select(EventRow::as_select())
        .load(&mut conn)
        .expect("events")
}

/// Waits (bounded) until `wanted` events of kind `event` are written.
pub async fn wait_for_events(app: &TestApp, event: &str, wanted: usize) -> Vec<EventRow> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found: Vec<EventRow> = events(app)
            .into_iter()
            .filter(|e| e.event == event)
            .collect();
        if found.len() >= wanted || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn downloads_granted_and_refused_are_recorded_with_who_what_and_how() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(
        &app,
        &staff,
        "payslip.pdf",
        b"%PDF-1.7 payslip",
        "owner",
        None,
        &[],
    )
    .await;
    let paul = app.logged_in("paul", Role::User).await;
    let url = format!("/files/{}/download", file.id);

    let granted = staff
        .client
        .get(staff.url(&url))
        .header("range", "bytes=0-3")
        .header("user-agent", "audit-test/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(granted.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(paul.get(&url).await.status(), StatusCode::FORBIDDEN);
    let head = staff.client.head(staff.url(&url)).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        app.browser().get(&url).await.status(),
        StatusCode::SEE_OTHER
    );

    let recorded = wait_for_events(&app, "download", 4).await;
    assert_eq!(recorded.len(), 4, "{recorded:#?}");
    let first = &recorded[0];
    assert_eq!(first.outcome.as_deref(), Some("granted"));
    assert_eq!(first.status, Some(206));
    assert_eq!(first.route.as_deref(), Some("detail"));
    assert_eq!(first.delivery.as_deref(), Some("app"));
    assert_eq!(first.method.as_deref(), Some("GET"));
    assert_eq!(first.byte_range.as_deref(), Some("bytes=0-3"));
    assert_eq!(first.username.as_deref(), Some("stella"));
    assert_eq!(first.file_id.as_deref(), Some(file.id.as_str()));
    assert_eq!(first.file_name.as_deref(), Some("payslip.pdf"));
    assert_eq!(first.client.as_deref(), Some("127.0.0.1"));
    assert_eq!(first.user_agent.as_deref(), Some("audit-test/1.0"));
    let refused = &recorded[1];
    assert_eq!(
        (
            refused.outcome.as_deref(),
            refused.status,
            refused.username.as_deref()
        ),
        (Some("refused"), Some(403), Some("paul"))
    );
    assert_eq!(refused.delivery, None);
    assert_eq!(recorded[2].method.as_deref(), Some("HEAD"));
    let anonymous = &recorded[3];
    assert_eq!(
        (
            anonymous.outcome.as_deref(),
            anonymous.status,
            anonymous.username.as_deref()
        ),
        (Some("refused"), Some(303), None)
    );
}

#[tokio::test]
async fn a_burst_of_2000_downloads_is_recorded_exactly() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "a.txt", b"abc", "owner", None, &[]).await;
    let url = staff.url(&format!("/files/{}/download", file.id));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = staff.client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..250 {
                let response = client.get(&url).send().await.expect("GET");
                assert_eq!(response.status(), StatusCode::OK);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let recorded = wait_for_events(&app, "download", 2000).await;
    assert_eq!(recorded.len(), 2000);
    assert!(
        recorded
            .iter()
            .all(|e| e.outcome.as_deref() == Some("granted"))
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_client_is_the_forwarded_one_and_a_spoof_is_ignored() {
    let app = spawn_app_with(|s| {
        s.server.trusted_proxies =
            private_media::domain::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    })
    .await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(&app, &staff, "a.txt", b"abc", "owner", None, &[]).await;
    let url = staff.url(&format!("/files/{}/download", file.id));
    staff
        .client
        .get(&url)
        .header("x-forwarded-for", "198.51.100.7, 127.0.0.1")
        .send()
        .await
        .unwrap();
    let untrusted = spawn_app().await;
    let other = untrusted.logged_in("stella", Role::Staff).await;
    let file2 = upload_file(&untrusted, &other, "a.txt", b"abc", "owner", None, &[]).await;
    other
        .client
        .get(other.url(&format!("/files/{}/download", file2.id)))
        .header("x-forwarded-for", "198.51.100.7")
        .send()
        .await
        .unwrap();
    let trusted_event = wait_for_events(&app, "download", 1).await;
    assert_eq!(trusted_event[0].client.as_deref(), Some("198.51.100.7"));
    let spoofed = wait_for_events(&untrusted, "download", 1).await;
    assert_eq!(
        spoofed[0].client.as_deref(),
        Some("127.0.0.1"),
        "a spoof from an untrusted peer"
    );
}

#[tokio::test]
async fn every_kind_of_change_is_recorded_with_what_changed() {
    use crate::helpers::{PASSWORD, csrf_token_in, location};
    let app = spawn_app().await;
    let root = app.logged_in("root", Role::Superuser).await;
    let paul = app.add_user("paul", Role::User);
    app.add_user("anna", Role::User);

    // A failed login records the name tried, never the password.
    let stranger = app.browser();
    stranger.login("nobody", "wrong password 123", None).await;
    // Upload, edit (rule and readers), share, revoke, delete.
    let file = upload_file(
        &app,
        &root,
        "contract.pdf",
        b"%PDF-1.7 contract",
        "owner",
        None,
        &[],
    )
    .await;
    let page = root.get_text(&format!("/admin/files/{}", file.id)).await;
    let token = csrf_token_in(&page).unwrap();
    let edited = root
        .post_form(
            &format!("/admin/files/{}", file.id),
            &[
                ("csrf_token", &token),
                ("title", "Contract 2027"),
                ("access", "users"),
                ("users", "paul"),
                ("users", "anna"),
            ],
        )
        .await;
    assert_eq!(edited.status(), StatusCode::SEE_OTHER);
    let shared = root
        .post_form(
            &format!("/admin/files/{}/links", file.id),
            &[
                ("csrf_token", &token),
                ("expires_in", "1d"),
                ("max_downloads", "2"),
                ("label", "auditor"),
            ],
        )
        .await;
    assert_eq!(shared.status(), StatusCode::SEE_OTHER);
    let page = root.get_text(&format!("/admin/files/{}", file.id)).await;
    let link_id = page
        .split("/admin/links/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    let revoked = root
        .post_form(
            &format!("/admin/links/{link_id}/revoke"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    // Users: create, change, password.
    let created = root
        .post_form(
            "/admin/users",
            &[
                ("csrf_token", &token),
                ("username", "newbie"),
                ("password", PASSWORD),
                ("role", "staff"),
            ],
        )
        .await;
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let changed = root
        .post_form(
            &format!("/admin/users/{}", paul.id),
            &[("csrf_token", &token), ("role", "staff")],
        )
        .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    let password = root
        .post_form(
            &format!("/admin/users/{}/password", paul.id),
            &[("csrf_token", &token), ("password", "a brand new password")],
        )
        .await;
    assert_eq!(password.status(), StatusCode::SEE_OTHER);
    let deleted = root
        .post_form(
            &format!("/admin/files/{}/delete", file.id),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(
        deleted.status(),
        StatusCode::SEE_OTHER,
        "{}",
        location(&deleted)
    );

    let find = |all: &[EventRow], kind: &str| -> EventRow {
        all.iter()
            .find(|e| e.event == kind)
            .unwrap_or_else(|| panic!("no {kind} event in {all:#?}"))
            .clone()
    };
    wait_for_events(&app, "delete", 1).await;
    let all = events(&app);
    let login = find(&all, "login");
    assert_eq!(login.username.as_deref(), Some("root"));
    let failed = find(&all, "login_failed");
    assert_eq!(failed.username.as_deref(), Some("nobody"));
    assert!(
        all.iter()
            .all(|e| !format!("{e:?}").contains("wrong password")),
        "a password was recorded"
    );
    let upload = find(&all, "upload");
    assert_eq!(upload.file_id.as_deref(), Some(file.id.as_str()));
    assert_eq!(upload.file_name.as_deref(), Some("contract.pdf"));
    let edit = find(&all, "edit");
    let detail = edit.detail.unwrap();
    assert!(detail.contains("owner → users (anna, paul)"), "{detail}");
    assert!(detail.contains("“Contract 2027”"), "{detail}");
    let link = find(&all, "link_created");
    assert_eq!(link.link_id.as_deref(), Some(link_id.as_str()));
    assert!(link.detail.unwrap().contains("at most 2 downloads"));
    assert_eq!(
        find(&all, "link_revoked").link_id.as_deref(),
        Some(link_id.as_str())
    );
    assert!(
        find(&all, "user_created")
            .detail
            .unwrap()
            .contains("newbie")
    );
    let user_changed = find(&all, "user_changed").detail.unwrap();
    assert!(user_changed.contains("role user → staff"), "{user_changed}");
    assert!(user_changed.contains("active → inactive"), "{user_changed}");
    assert!(find(&all, "password_set").detail.unwrap().contains("paul"));
    let delete = find(&all, "delete");
    assert_eq!(delete.file_id.as_deref(), Some(file.id.as_str()));
    assert!(
        all.iter()
            .filter(|e| e.event != "login_failed")
            .all(|e| e.client.as_deref() == Some("127.0.0.1"))
    );
}

#[tokio::test]
async fn a_clean_stop_writes_every_queued_event() {
    use crate::helpers::{Browser, PASSWORD, location, serve};
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path(), &[("PRIVATE_MEDIA_ADMIN_PASSWORD", PASSWORD)]);
    let base = format!("http://127.0.0.1:{}", served.port);
    let admin = Browser::new(&base);
    assert_eq!(
        admin.login("admin", PASSWORD, None).await.status(),
        StatusCode::SEE_OTHER
    );
    let stored = admin.upload("owner", &[("a.txt", b"abc")]).await;
    let id = location(&stored).rsplit('/').next().unwrap().to_owned();
    let url = admin.url(&format!("/files/{id}/download"));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let client = admin.client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..100 {
                assert_eq!(
                    client.get(&url).send().await.unwrap().status(),
                    StatusCode::OK
                );
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &served.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(served.child.wait().unwrap().success(), "a clean stop");
    let mut conn = diesel::SqliteConnection::establish(
        dir.path()
            .join("private-media-audit.sqlite3")
            .to_str()
            .unwrap(),
    )
    .unwrap();
    let downloads: i64 = audit_events::table
        .filter(audit_events::event.eq("download"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(
        downloads, 400,
        "every download of the run was written by the stop"
    );
}

#[tokio::test]
async fn events_older_than_the_retention_are_pruned_and_newer_ones_stay() {
    use private_media::db::models::audit_event::{AuditEvent, NewEvent};
    let app = spawn_app().await;
    let now = chrono::Utc::now().naive_utc();
    let at = |days: i64| NewEvent {
        at: now - chrono::Duration::days(days),
        event: "download".into(),
        detail: Some(format!("{days} days old")),
        ..NewEvent::default()
    };
    let batch: Vec<NewEvent> = [400, 366, 370, 10, 0].into_iter().map(at).collect();
    {
        let mut conn = app.audit_db.get().unwrap();
        AuditEvent::insert_batch(&mut conn, &batch).unwrap();
    }
    let removed = private_media::audit::prune(&app.audit_db, 365)
        .await
        .unwrap();
    assert_eq!(removed, 3);
    let left: Vec<String> = events(&app).into_iter().filter_map(|e| e.detail).collect();
    assert_eq!(
        left,
        vec!["10 days old".to_owned(), "0 days old".to_owned()]
    );
}

#[tokio::test]
async fn changes_made_from_the_command_line_are_recorded_too() {
    let app = spawn_app().await;
    let added = app.cli(
        &["user", "add", "carol", "--staff", "--password-stdin"],
        Some("a long enough password\n"),
    );
    assert!(added.status.success(), "{added:?}");
    let deactivated = app.cli(&["user", "deactivate", "carol"], None);
    assert!(deactivated.status.success(), "{deactivated:?}");
    let all = events(&app);
    let created = all
        .iter()
        .find(|e| e.event == "user_created")
        .expect("user_created");
    assert_eq!(created.route.as_deref(), Some("cli"));
    assert!(created.detail.as_deref().unwrap().contains("carol"));
    let changed = all
        .iter()
        .find(|e| e.event == "user_changed")
        .expect("user_changed");
    assert!(
        changed
            .detail
            .as_deref()
            .unwrap()
            .contains("active → inactive")
    );
}
