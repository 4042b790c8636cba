//! The in-process cache of the access check's reads (README: "Performance"): every change
//! that decides who may read what takes effect at the very next request on the instance that
//! made it, and on another instance at once (SQLite) or within the stated bound (PostgreSQL).
//! Each test first downloads twice, so that the answer is in the cache when the change comes.

use std::time::{Duration, Instant};

use private_media::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{Browser, TestApp, spawn_app, text, upload_file};
use crate::scale_out::two_instances;

/// How late a change made on one instance may reach another (README: "Performance").
const OTHER_INSTANCE_BOUND: Duration = Duration::from_millis(250);

struct Fixture {
    app: TestApp,
    staff: Browser,
    admin: Browser,
    paul: Browser,
    url: String,
    file_id: String,
}

/// A file only paul (and staff) may read, downloaded twice by paul.
async fn primed() -> Fixture {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let admin = app.logged_in("root", Role::Superuser).await;
    let paul = app.logged_in("paul", Role::User).await;
    let file = upload_file(
        &app,
        &staff,
        "payslip.pdf",
        b"%PDF-1.4 paul",
        "users",
        None,
        &["paul"],
    )
    .await;
    let url = format!("/files/{}/download", file.id);
    for _ in 0..2 {
        assert_eq!(paul.get(&url).await.status(), StatusCode::OK);
    }
    Fixture {
        app,
        staff,
        admin,
        paul,
        url,
        file_id: file.id.to_string(),
    }
}

/// Posts `fields` to `action` with the CSRF token of `form_page`, as the browser would after
/// opening it; the change must be accepted (303).
async fn submit(browser: &Browser, form_page: &str, action: &str, fields: &[(&str, &str)]) {
    let token = browser.csrf_token(form_page).await;
    let mut all = vec![("csrf_token", token.as_str())];
    all.extend_from_slice(fields);
    assert_eq!(
        browser.post_form(action, &all).await.status(),
        StatusCode::SEE_OTHER,
        "{action}"
    );
}

async fn edit_access(staff: &Browser, file_id: &str, access: &str, users: &[&str]) {
    let path = format!("/admin/files/{file_id}");
    let mut fields = vec![("title", "Payslip"), ("access", access)];
    fields.extend(users.iter().map(|u| ("users", *u)));
    submit(staff, &path, &path, &fields).await;
}

fn user_id(app: &TestApp, name: &str) -> String {
    let mut conn = app.db.get().expect("connection");
    private_media::db::models::user::User::find_by_username(
        &mut conn,
        &private_media::domain::Username::parse(name).expect("name"),
    )
    .expect("query")
    .expect("user")
    .id
    .to_string()
}

#[tokio::test]
async fn a_rule_change_is_seen_by_the_very_next_download() {
    let f = primed().await;
    edit_access(&f.staff, &f.file_id, "owner", &[]).await;
    assert_eq!(f.paul.get(&f.url).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_reader_taken_off_the_list_is_refused_at_once_and_one_put_on_it_is_let_in_at_once() {
    let f = primed().await;
    f.app.add_user("anna", Role::User);
    edit_access(&f.staff, &f.file_id, "users", &["anna"]).await;
    assert_eq!(f.paul.get(&f.url).await.status(), StatusCode::FORBIDDEN);
    // The refusal was cached too; putting paul back is just as immediate.
    assert_eq!(f.paul.get(&f.url).await.status(), StatusCode::FORBIDDEN);
    edit_access(&f.staff, &f.file_id, "users", &["anna", "paul"]).await;
    assert_eq!(f.paul.get(&f.url).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_deleted_file_is_gone_at_the_very_next_download() {
    let f = primed().await;
    let detail = format!("/admin/files/{}", f.file_id);
    submit(&f.staff, &detail, &format!("{detail}/delete"), &[]).await;
    assert_eq!(f.paul.get(&f.url).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_deactivation_ends_the_session_at_the_very_next_request() {
    let f = primed().await;
    let path = format!("/admin/users/{}", user_id(&f.app, "paul"));
    submit(&f.admin, &path, &path, &[("role", "user")]).await;
    assert_eq!(f.paul.get(&f.url).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_password_change_ends_the_session_at_the_very_next_request() {
    let f = primed().await;
    let path = format!("/admin/users/{}", user_id(&f.app, "paul"));
    let password = [("password", "a brand new password")];
    submit(&f.admin, &path, &format!("{path}/password"), &password).await;
    assert_eq!(f.paul.get(&f.url).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_logout_ends_a_copied_cookie_at_the_very_next_request() {
    let f = primed().await;
    let copy = Browser::with_cookies_of(&f.paul, &f.app.base);
    assert_eq!(copy.get(&f.url).await.status(), StatusCode::OK);
    assert_eq!(f.paul.logout().await.status(), StatusCode::SEE_OTHER);
    assert_eq!(copy.get(&f.url).await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_command_run_beside_the_server_is_seen_by_the_very_next_request() {
    let f = primed().await;
    let output = f.app.cli(&["user", "deactivate", "paul"], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    // SQLite: exact (its data_version). PostgreSQL: the command is another process, like
    // another instance, and the bound applies.
    let refused_after = refused_within(&f.paul, &f.url, OTHER_INSTANCE_BOUND).await;
    if f.app.db.backend_name().expect("backend") == "sqlite" {
        assert_eq!(refused_after, Some(0), "SQLite must be exact");
    }
}

/// Asks `url` until it is no longer answered 200; how many 200s came before, or panics
/// after `bound`.
async fn refused_within(browser: &Browser, url: &str, bound: Duration) -> Option<usize> {
    let start = Instant::now();
    let mut granted = 0;
    loop {
        let status = browser.get(url).await.status();
        if status != StatusCode::OK {
            return Some(granted);
        }
        granted += 1;
        assert!(
            start.elapsed() < bound,
            "still granted {granted} times after {:?}",
            start.elapsed()
        );
    }
}

/// On a site of two instances: stella (staff) and paul on the first, a file `name` only paul
/// may read, uploaded through the first and downloaded twice by paul through the second.
struct TwoPrimed {
    staff: Browser,
    paul_on_two: Browser,
    url: String,
    file_id: String,
}

async fn primed_on_two(site: &crate::scale_out::Site, name: &str) -> TwoPrimed {
    let (one, two) = (&site.one, &site.two);
    let staff = one.logged_in("stella", Role::Staff).await;
    let paul = one.logged_in("paul", Role::User).await;
    let file = upload_file(one, &staff, name, b"%PDF-1.4 x", "users", None, &["paul"]).await;
    let url = format!("/files/{}/download", file.id);
    let paul_on_two = Browser::with_cookies_of(&paul, &two.base);
    for _ in 0..2 {
        assert_eq!(paul_on_two.get(&url).await.status(), StatusCode::OK);
    }
    TwoPrimed {
        staff,
        paul_on_two,
        url,
        file_id: file.id.to_string(),
    }
}

#[tokio::test]
async fn a_change_on_one_instance_reaches_the_other_within_the_bound() {
    let site = two_instances().await;
    let one = &site.one;
    let TwoPrimed {
        staff,
        paul_on_two,
        url,
        file_id,
    } = primed_on_two(&site, "contract.pdf").await;
    let sqlite = one.db.backend_name().expect("backend") == "sqlite";

    edit_access(&staff, &file_id, "owner", &[]).await;
    let granted = refused_within(&paul_on_two, &url, OTHER_INSTANCE_BOUND).await;
    if sqlite {
        assert_eq!(granted, Some(0), "SQLite must be exact across processes");
    }

    // And back: paul on the list again, seen by the other instance as promptly.
    edit_access(&staff, &file_id, "users", &["paul"]).await;
    let start = Instant::now();
    while paul_on_two.get(&url).await.status() != StatusCode::OK {
        assert!(
            start.elapsed() < OTHER_INSTANCE_BOUND,
            "not granted after {:?}",
            start.elapsed()
        );
    }
    if sqlite {
        assert!(start.elapsed() < Duration::from_millis(100));
    }

    // A password change made through one instance ends the session on the other.
    let admin = one.logged_in("root", Role::Superuser).await;
    let path = format!("/admin/users/{}", user_id(one, "paul"));
    let password = [("password", "another long password")];
    submit(&admin, &path, &format!("{path}/password"), &password).await;
    let granted = refused_within(&paul_on_two, &url, OTHER_INSTANCE_BOUND).await;
    if sqlite {
        assert_eq!(granted, Some(0));
    }
}

/// PostgreSQL only: with the change watchers' connections cut, no instance answers from its
/// cache until its watcher is back (and then it starts from an empty cache).
#[tokio::test]
async fn a_lost_watcher_connection_never_leaves_a_stale_answer() {
    let site = two_instances().await;
    let one = &site.one;
    if one.db.backend_name().expect("backend") != "postgres" {
        return;
    }
    let TwoPrimed {
        staff,
        paul_on_two,
        url,
        file_id,
    } = primed_on_two(&site, "memo.pdf").await;
    // Every watcher of this server (other tests' too: they only read uncached for a moment).
    terminate_watchers();
    edit_access(&staff, &file_id, "owner", &[]).await;
    refused_within(&paul_on_two, &url, OTHER_INSTANCE_BOUND).await;
    // Back and still exact: a second change after the watcher reconnected.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    edit_access(&staff, &file_id, "users", &["paul"]).await;
    let start = Instant::now();
    while paul_on_two.get(&url).await.status() != StatusCode::OK {
        assert!(
            start.elapsed() < OTHER_INSTANCE_BOUND,
            "not granted after {:?}",
            start.elapsed()
        );
    }
    edit_access(&staff, &file_id, "owner", &[]).await;
    refused_within(&paul_on_two, &url, OTHER_INSTANCE_BOUND).await;
}

fn terminate_watchers() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let server = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
    let mut conn = diesel::PgConnection::establish(&server).expect("connect");
    conn.batch_execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'private-media-watch'",
    )
    .expect("terminate the watchers");
}

/// PostgreSQL only: the triggers that notify the other instances fire ALWAYS, so a change
/// made with `session_replication_role = replica` (pg_restore --disable-triggers, logical
/// replication) reaches them too (found by an attack: it was never seen).
#[tokio::test]
async fn a_change_made_as_a_replica_still_reaches_the_other_instances() {
    use diesel::connection::SimpleConnection;

    let site = two_instances().await;
    let one = &site.one;
    if one.db.backend_name().expect("backend") != "postgres" {
        return;
    }
    let TwoPrimed {
        staff: _,
        paul_on_two,
        url,
        file_id,
    } = primed_on_two(&site, "note.pdf").await;
    // A raw change, as a replica applies it; through the first instance's pool, which the
    // second instance's cache knows nothing of.
    let mut conn = one.db.get().expect("connection");
    conn.batch_execute(&format!(
        "SET session_replication_role = replica; \
         UPDATE files SET access = 'owner' WHERE id = '{}'; \
         SET session_replication_role = origin;",
        file_id
    ))
    .expect("raw update");
    drop(conn);
    refused_within(&paul_on_two, &url, OTHER_INSTANCE_BOUND).await;
}
