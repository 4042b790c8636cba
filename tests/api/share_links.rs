//! Share links through HTTP: made by staff on a file's page, opened by someone without an
//! account, counted exactly (also under concurrency), refused once expired, revoked, used up
//! or their creator deactivated, password-protected with a throttle, and served like every
//! other download (ranges, conditional requests, S3, nginx).

use chrono::Utc;
use diesel::prelude::*;
use private_media::db::schema::{share_links, users};
use private_media::domain::Role;
use reqwest::StatusCode;

use crate::helpers::{Browser, TestApp, csrf_token_in, location, spawn_app, text, upload_file};

const DATA: &[u8] = b"the quarterly figures, for the accountant's eyes only\n";

/// Makes a link for `file_id` through the share form; returns the link's path (`/s/…`) and
/// the detail page that showed it.
async fn make_link(staff: &Browser, file_id: &str, fields: &[(&str, &str)]) -> (String, String) {
    let response = submit_share_form(staff, file_id, fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "share form");
    assert_eq!(location(&response), format!("/admin/files/{file_id}#links"));
    let page = staff.get_text(&format!("/admin/files/{file_id}")).await;
    let url = new_link_in(&page).expect("the new link on the detail page");
    let path = url
        .strip_prefix(&staff.base)
        .unwrap_or_else(|| panic!("{url} is not on {}", staff.base))
        .to_owned();
    (path, page)
}

async fn submit_share_form(
    staff: &Browser,
    file_id: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let token = staff.csrf_token("/files").await;
    let mut form = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    staff
        .post_form(&format!("/admin/files/{file_id}/links"), &form)
        .await
}

fn new_link_in(page: &str) -> Option<String> {
    let start = page.find(r#"id="new-link-url" type="text" readonly value=""#)?;
    let rest = &page[start..];
    let value = rest.split(r#"value=""#).nth(1)?;
    Some(value.split('"').next()?.to_owned())
}

fn assert_share_headers(response: &reqwest::Response, what: &str) {
    assert_eq!(
        response.headers()["referrer-policy"],
        "no-referrer",
        "{what}"
    );
    assert_eq!(
        response.headers()["x-robots-tag"],
        "noindex, nofollow",
        "{what}"
    );
}

/// The status of `path` once it is `wanted`, or the last one seen after a second.
async fn eventually(app: &TestApp, path: &str, wanted: StatusCode) -> StatusCode {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let status = app.browser().get(path).await.status();
        if status == wanted || std::time::Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The use count of the newest link.
fn downloads_of(app: &TestApp, _link: &str) -> i64 {
    let mut conn = app.db.get().expect("connection");
    share_links::table
        .select(share_links::downloads)
        .order(share_links::created_at.desc())
        .first(&mut conn)
        .expect("a link")
}

async fn staff_and_file(app: &TestApp) -> (Browser, String) {
    let staff = app.logged_in("stella", Role::Staff).await;
    let file = upload_file(app, &staff, "Q3 figures.txt", DATA, "owner", None, &[]).await;
    (staff, file.id.to_string())
}

#[tokio::test]
async fn a_link_opens_for_a_stranger_counts_its_downloads_and_is_shown_only_once() {
    let app = spawn_app().await;
    let (staff, file_id) = staff_and_file(&app).await;
    let (link, page) = make_link(
        &staff,
        &file_id,
        &[
            ("expires_in", "7d"),
            ("max_downloads", "3"),
            ("label", "Accountant"),
        ],
    )
    .await;
    assert!(link.starts_with("/s/") && link.len() == 3 + 43, "{link}");
    assert!(
        page.contains("Accountant"),
        "the detail page lists the link"
    );
    assert!(page.contains("0 of 3"));
    // Shown once: the next view of the page has the list, not the URL.
    let again = staff.get_text(&format!("/admin/files/{file_id}")).await;
    assert_eq!(new_link_in(&again), None);
    assert!(
        !again.contains(&link[3..]),
        "the token is never shown again"
    );
    // Only its digest is stored.
    let mut conn = app.db.get().unwrap();
    let stored: String = share_links::table
        .select(share_links::token_sha256)
        .first(&mut conn)
        .unwrap();
    assert_eq!(stored.len(), 64);
    assert_ne!(stored, link[3..]);

    let stranger = app.browser();
    let landing = stranger.get(&link).await;
    assert_eq!(landing.status(), StatusCode::OK);
    assert_share_headers(&landing, "landing");
    assert_eq!(landing.headers()["cache-control"], "no-store");
    let body = landing.text().await.unwrap();
    assert!(body.contains("Q3 figures.txt"), "{body}");
    assert!(body.contains("Downloads left"));
    assert!(!body.contains("Log out"), "no account navigation");
    // Opening the landing page (as a link preview would) takes no download.
    assert_eq!(downloads_of(&app, &link), 0);

    let download = stranger.get(&format!("{link}/download")).await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_share_headers(&download, "download");
    assert_eq!(download.headers()["cache-control"], "private, no-cache");
    assert_eq!(download.headers()["x-content-type-options"], "nosniff");
    let disposition = download.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(disposition.contains("Q3%20figures.txt"), "{disposition}");
    assert_eq!(download.bytes().await.unwrap(), DATA);
    assert_eq!(downloads_of(&app, &link), 1);

    let listed = staff.get_text(&format!("/admin/files/{file_id}")).await;
    assert!(listed.contains("1 of 3"), "the use count shows");
    let all = staff.get_text("/admin/links").await;
    assert!(all.contains("Accountant") && all.contains("Q3 figures.txt"));
}

#[tokio::test]
async fn head_304_and_later_ranges_are_not_counted_and_a_range_from_zero_is() {
    let app = spawn_app().await;
    let (staff, file_id) = staff_and_file(&app).await;
    let (link, _) = make_link(&staff, &file_id, &[("max_downloads", "5")]).await;
    let url = format!("{}{link}/download", app.base);
    let client = reqwest::Client::new();

    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_share_headers(&head, "HEAD");
    let etag = head.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(downloads_of(&app, &link), 0, "HEAD");

    let not_modified = client
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(downloads_of(&app, &link), 0, "304");
    let unsatisfiable = client
        .get(&url)
        .header("range", "bytes=100000-")
        .send()
        .await
        .unwrap();
    assert_eq!(unsatisfiable.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(downloads_of(&app, &link), 0, "416");

    // A range that starts after byte 0 takes no download.
    let later = client
        .get(&url)
        .header("range", "bytes=1-")
        .send()
        .await
        .unwrap();
    assert_eq!(later.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(later.bytes().await.unwrap(), &DATA[1..]);
    assert_eq!(downloads_of(&app, &link), 0, "a later range");

    // A recipient's download manager: the first piece counts, the rest of it does not.
    let recipient = app.browser();
    let first = recipient
        .client
        .get(recipient.url(&format!("{link}/download")))
        .header("range", "bytes=0-3")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(first.bytes().await.unwrap(), &DATA[..4]);
    assert_eq!(downloads_of(&app, &link), 1, "a range from byte 0 counts");
    for range in ["bytes=4-9", "bytes=10-"] {
        let rest = recipient
            .client
            .get(recipient.url(&format!("{link}/download")))
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(rest.status(), StatusCode::PARTIAL_CONTENT, "{range}");
    }
    assert_eq!(downloads_of(&app, &link), 1, "the rest of a download");
    // Whatever the `Range`, what decides is whether byte 0 went out.
    for tricky in ["bytes=1-0,0-", "bytes=-5", "bytes=4-9,0-0", "bytes=0-0,5-"] {
        let before = downloads_of(&app, &link);
        let response = recipient
            .client
            .get(recipient.url(&format!("{link}/download")))
            .header("range", tricky)
            .send()
            .await
            .unwrap();
        let sent_byte_zero = response.status() == StatusCode::OK
            || response
                .headers()
                .get("content-range")
                .is_some_and(|v| v.to_str().unwrap().starts_with("bytes 0-"));
        let expected = before + i64::from(sent_byte_zero);
        assert_eq!(downloads_of(&app, &link), expected, "{tricky}");
    }
}

#[tokio::test]
async fn a_used_up_link_answers_410_without_naming_the_file_and_a_resume_still_finishes() {
    let app = spawn_app().await;
    let (staff, file_id) = staff_and_file(&app).await;
    let (link, _) = make_link(&staff, &file_id, &[("max_downloads", "1")]).await;
    let recipient = app.browser();
    let whole = recipient.get(&format!("{link}/download")).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.bytes().await.unwrap(), DATA);

    // The same browser resumes what broke off: later ranges of its counted download.
    let resumed = recipient
        .client
        .get(recipient.url(&format!("{link}/download")))
        .header("range", "bytes=10-")
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resumed.bytes().await.unwrap(), &DATA[10..]);

    for (who, browser) in [("recipient", &recipient), ("someone else", &app.browser())] {
        for path in [link.clone(), format!("{link}/download")] {
            let gone = browser.get(&path).await;
            assert_eq!(gone.status(), StatusCode::GONE, "{who} {path}");
            assert_share_headers(&gone, "410");
            let body = gone.text().await.unwrap();
            assert!(body.contains("used as many times"), "{body}");
            assert!(!body.contains("Q3 figures"), "a 410 names no file: {body}");
        }
    }
    // A stranger's later range does not ride on the recipient's grant.
    let stranger_range = app
        .browser()
        .client
        .get(format!("{}{link}/download", app.base))
        .header("range", "bytes=10-")
        .send()
        .await
        .unwrap();
    assert_eq!(stranger_range.status(), StatusCode::GONE);
    assert_eq!(downloads_of(&app, &link), 1);
}

#[tokio::test]
async fn twenty_concurrent_requests_for_the_last_download_get_exactly_one_file() {
    let app = spawn_app().await;
    let (staff, file_id) = staff_and_file(&app).await;
    let (link, _) = make_link(&staff, &file_id, &[("max_downloads", "2")]).await;
    let first = app.browser().get(&format!("{link}/download")).await;
    assert_eq!(first.status(), StatusCode::OK);

    let url = format!("{}{link}/download", app.base);
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let url = url.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            barrier.wait().await;
            let response = client.get(&url).send().await.expect("GET");
            let status = response.status();
            let body = response.bytes().await.expect("body");
            (status, body)
        }));
    }
    let mut served = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => {
                served += 1;
                assert_eq!(body, DATA, "the last download is served whole");
            }
            StatusCode::GONE => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(served, 1, "exactly one request took the last download");
    assert_eq!(downloads_of(&app, &link), 2);
}

#[tokio::test]
async fn expired_revoked_deleted_and_deactivated_links_refuse() {
    let app = spawn_app().await;
    let (staff, file_id) = staff_and_file(&app).await;

    // Expired: the clock is moved by moving the link's expiry into the past.
    let (expired, _) = make_link(&staff, &file_id, &[("expires_in", "1h")]).await;
    {
        let mut conn = app.db.get().unwrap();
        diesel::update(share_links::table)
            .set(share_links::expires_at.eq(Utc::now().naive_utc() - chrono::Duration::seconds(1)))
            .execute(&mut conn)
            .unwrap();
    }
    let gone = app.browser().get(&format!("{expired}/download")).await;
    assert_eq!(gone.status(), StatusCode::GONE);
    assert!(gone.text().await.unwrap().contains("expired"));
    assert!(
        staff
            .get_text("/admin/links?state=expired")
            .await
            .contains("expired")
    );

    // Revoked, from the file's page, with CSRF.
    let (revoked, page) = make_link(&staff, &file_id, &[("label", "to revoke")]).await;
    assert_eq!(app.browser().get(&revoked).await.status(), StatusCode::OK);
    let link_id = page
        .split("/admin/links/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .expect("a revoke button")
        .to_owned();
    let forged = staff
        .post_form(
            &format!("/admin/links/{link_id}/revoke"),
            &[("csrf_token", "nope")],
        )
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.browser().get(&revoked).await.status(), StatusCode::OK);
    let token = csrf_token_in(&page).unwrap();
    let revoke = staff
        .post_form(
            &format!("/admin/links/{link_id}/revoke"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(revoke.status(), StatusCode::SEE_OTHER);
    for path in [revoked.clone(), format!("{revoked}/download")] {
        let gone = app.browser().get(&path).await;
        assert_eq!(gone.status(), StatusCode::GONE, "{path}");
        assert!(gone.text().await.unwrap().contains("withdrawn"));
    }
    let listed = staff.get_text("/admin/links?state=revoked").await;
    assert!(listed.contains("to revoke"), "{listed}");
    assert!(
        !staff
            .get_text("/admin/links?state=active")
            .await
            .contains("to revoke")
    );
    assert_eq!(
        staff.get("/admin/links?state=nonsense").await.status(),
        StatusCode::BAD_REQUEST
    );

    // The creator deactivated: every link they made stops.
    let (theirs, _) = make_link(&staff, &file_id, &[]).await;
    assert_eq!(app.browser().get(&theirs).await.status(), StatusCode::OK);
    {
        let mut conn = app.db.get().unwrap();
        diesel::update(users::table.filter(users::username.eq("stella")))
            .set(users::is_active.eq(false))
            .execute(&mut conn)
            .unwrap();
    }
    // A change made beside the app (here straight in the database, as another instance or a
    // command would) reaches its cache within the README's bound (250 ms on PostgreSQL).
    assert_eq!(
        eventually(&app, &format!("{theirs}/download"), StatusCode::GONE).await,
        StatusCode::GONE
    );
    // Active again but no longer staff: no more sharing either.
    {
        let mut conn = app.db.get().unwrap();
        diesel::update(users::table.filter(users::username.eq("stella")))
            .set((users::is_active.eq(true), users::is_staff.eq(false)))
            .execute(&mut conn)
            .unwrap();
    }
    assert_eq!(
        eventually(&app, &theirs, StatusCode::GONE).await,
        StatusCode::GONE
    );
    {
        let mut conn = app.db.get().unwrap();
        diesel::update(users::table.filter(users::username.eq("stella")))
            .set(users::is_staff.eq(true))
            .execute(&mut conn)
            .unwrap();
    }

    // The file deleted: its links go with it, and their tokens name nothing.
    let staff = app.logged_in("stella2", Role::Staff).await;
    let (deleted, _) = make_link(&staff, &file_id, &[]).await;
    let token = staff
        .csrf_token(&format!("/admin/files/{file_id}/delete"))
        .await;
    let delete = staff
        .post_form(
            &format!("/admin/files/{file_id}/delete"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(delete.status(), StatusCode::SEE_OTHER);
    let mut conn = app.db.get().unwrap();
    let left: i64 = share_links::table.count().get_result(&mut conn).unwrap();
    assert_eq!(left, 0, "deleting the file deleted its links");
    for path in [deleted.clone(), format!("{deleted}/download")] {
        let missing = app.browser().get(&path).await;
        assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{path}");
        assert_share_headers(&missing, "404");
    }
}

#[tokio::test]
async fn refusals_before_the_share_handlers_carry_the_privacy_headers_too() {
    let app = spawn_app().await;
    let token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let client = reqwest::Client::new();
    for (method, path, status) in [
        (reqwest::Method::POST, format!("/s/{token}"), 403),
        (reqwest::Method::DELETE, format!("/s/{token}/download"), 403),
        (
            reqwest::Method::OPTIONS,
            format!("/s/{token}/download"),
            405,
        ),
        (reqwest::Method::GET, format!("/s/{token}/"), 404),
        (reqwest::Method::GET, "/s/".to_owned(), 404),
    ] {
        let response = client
            .request(method.clone(), format!("{}{path}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        assert_share_headers(&response, &path);
    }
}

#[tokio::test]
async fn unknown_and_malformed_tokens_are_404() {
    let app = spawn_app().await;
    let browser = app.browser();
    for path in [
        "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/download",
        "/s/short",
        "/s/short/download",
        "/s/..%2F..%2Fetc%2Fpasswd",
        "/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB/download",
    ] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_share_headers(&response, path);
    }
}

#[tokio::test]
async fn a_password_protected_link_asks_first_and_throttles_guesses() {
    let app = spawn_app().await;
    let (staff, file_id) = staff_and_file(&app).await;
    let (link, _) = make_link(&staff, &file_id, &[("password", "open sesame 42")]).await;

    let recipient = app.browser();
    // No password yet: the download sends the browser to the landing page's form.
    let asked = recipient.get(&format!("{link}/download")).await;
    assert_eq!(asked.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&asked), link);
    let landing = recipient.get_text(&link).await;
    assert!(landing.contains("protected by a password"), "{landing}");
    assert!(
        !landing.contains("Q3 figures"),
        "the name shows before the password: {landing}"
    );
    let token = csrf_token_in(&landing).expect("a password form");

    let wrong = recipient
        .post_form(&link, &[("csrf_token", &token), ("password", "guess")])
        .await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert_share_headers(&wrong, "wrong password");
    assert!(wrong.text().await.unwrap().contains("not right"));
    // A POST without the CSRF token is refused before the password is looked at.
    let forged = recipient
        .post_form(&link, &[("password", "open sesame 42")])
        .await;
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        recipient.get(&format!("{link}/download")).await.status(),
        StatusCode::SEE_OTHER
    );

    let right = recipient
        .post_form(
            &link,
            &[("csrf_token", &token), ("password", "open sesame 42")],
        )
        .await;
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert!(recipient.get_text(&link).await.contains("Q3 figures.txt"));
    let download = recipient.get(&format!("{link}/download")).await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.bytes().await.unwrap(), DATA);
    // The grant is this browser's only.
    assert_eq!(
        app.browser()
            .get(&format!("{link}/download"))
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    // Nine more wrong guesses (ten in all) from anywhere, then even the right one waits.
    let guesser = app.browser();
    let token = csrf_token_in(&guesser.get_text(&link).await).unwrap();
    for i in 0..9 {
        let wrong = guesser
            .post_form(
                &link,
                &[("csrf_token", &token), ("password", &format!("guess {i}"))],
            )
            .await;
        assert_eq!(wrong.status(), StatusCode::FORBIDDEN, "guess {i}");
    }
    let throttled = guesser
        .post_form(
            &link,
            &[("csrf_token", &token), ("password", "open sesame 42")],
        )
        .await;
    assert_eq!(throttled.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(throttled.headers().contains_key("retry-after"));
    assert_share_headers(&throttled, "429");
    // The browser that gave the right password earlier keeps its grant.
    assert_eq!(
        recipient.get(&format!("{link}/download")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn plain_users_cannot_make_or_list_links_and_bad_forms_are_explained() {
    let app = spawn_app().await;
    let (staff, file_id) = staff_and_file(&app).await;
    let plain = app.logged_in("paul", Role::User).await;
    let token = plain.csrf_token("/files").await;
    let made = plain
        .post_form(
            &format!("/admin/files/{file_id}/links"),
            &[("csrf_token", &token), ("expires_in", "7d")],
        )
        .await;
    assert_eq!(made.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        plain.get("/admin/links").await.status(),
        StatusCode::FORBIDDEN
    );
    let anonymous = app.browser();
    assert_eq!(
        anonymous.get("/admin/links").await.status(),
        StatusCode::SEE_OTHER
    );
    let mut conn = app.db.get().unwrap();
    let count: i64 = share_links::table.count().get_result(&mut conn).unwrap();
    assert_eq!(count, 0);

    for (fields, message) in [
        (vec![("expires_in", "91d")], "at most 90 days"),
        (vec![("expires_in", "tomorrow")], "is not a duration"),
        (vec![("max_downloads", "0")], "Download limit"),
        (vec![("password", "short")], "at least 8"),
    ] {
        let refused = submit_share_form(&staff, &file_id, &fields).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fields:?}"
        );
        let body = text(&refused.bytes().await.unwrap());
        assert!(body.contains(message), "{fields:?}: {body}");
    }
    let count: i64 = share_links::table.count().get_result(&mut conn).unwrap();
    assert_eq!(count, 0, "a refused form makes no link");
    let unknown = submit_share_form(&staff, "0123456789abcdef0123456789abcdef", &[]).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

mod s3 {
    use private_media::config::StorageSettings;

    use super::*;
    use crate::helpers::s3_server::S3Server;
    use crate::helpers::spawn_app_with;

    async fn s3_app(server: &S3Server, presigned: bool) -> TestApp {
        let s3 = server.settings(presigned);
        spawn_app_with(|s| {
            s.storages.insert("s3".to_owned(), StorageSettings::S3(s3));
            s.upload.storage = "s3".to_owned();
        })
        .await
    }

    #[tokio::test]
    async fn a_link_to_an_s3_file_redirects_to_a_presigned_url_made_after_the_check() {
        let server = S3Server::start().await;
        let app = s3_app(&server, true).await;
        let (staff, file_id) = staff_and_file(&app).await;
        let (link, _) = make_link(&staff, &file_id, &[("max_downloads", "1")]).await;
        let recipient = app.browser();
        let redirect = recipient.get(&format!("{link}/download")).await;
        assert_eq!(redirect.status(), StatusCode::FOUND);
        assert_share_headers(&redirect, "redirect");
        let url = location(&redirect);
        assert!(url.starts_with(&server.endpoint), "{url}");
        assert_eq!(
            downloads_of(&app, &link),
            1,
            "the redirect took the download"
        );
        let fetched = reqwest::get(&url).await.unwrap();
        assert_eq!(fetched.status(), StatusCode::OK);
        assert_eq!(fetched.bytes().await.unwrap(), DATA);
        // Used up: no second presigned URL is made.
        let gone = app.browser().get(&format!("{link}/download")).await;
        assert_eq!(gone.status(), StatusCode::GONE);
        assert!(gone.headers().get("location").is_none());
        server.stop().await;
    }

    #[tokio::test]
    async fn a_link_to_an_s3_file_is_streamed_when_urls_are_not_presigned() {
        let server = S3Server::start().await;
        let app = s3_app(&server, false).await;
        let (staff, file_id) = staff_and_file(&app).await;
        let (link, _) = make_link(&staff, &file_id, &[("max_downloads", "2")]).await;
        let recipient = app.browser();
        let url = recipient.url(&format!("{link}/download"));
        let whole = recipient.client.get(&url).send().await.unwrap();
        assert_eq!(whole.status(), StatusCode::OK);
        assert_share_headers(&whole, "proxied");
        assert_eq!(whole.bytes().await.unwrap(), DATA);
        assert_eq!(downloads_of(&app, &link), 1);
        let rest = recipient
            .client
            .get(&url)
            .header("range", "bytes=5-9")
            .send()
            .await
            .unwrap();
        assert_eq!(rest.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(rest.bytes().await.unwrap(), &DATA[5..10]);
        assert_eq!(downloads_of(&app, &link), 1, "the rest of a download taken");
        server.stop().await;
    }
}

#[tokio::test]
async fn through_nginx_the_link_is_checked_by_the_app_and_sent_by_nginx() {
    use private_media::config::DeliveryServer;

    use crate::helpers::spawn_app_with;
    use crate::nginx::{nginx_available, start_nginx};
    if !nginx_available() {
        return;
    }
    let app = spawn_app_with(|s| s.delivery.server = DeliveryServer::Nginx).await;
    let app_port: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let nginx_dir = tempfile::tempdir().unwrap();
    let nginx = start_nginx(nginx_dir.path(), app_port, &app.storage_root());
    app.add_user("stella", Role::Staff);
    let staff = Browser::new(&nginx.base);
    assert_eq!(
        staff
            .login("stella", crate::helpers::PASSWORD, None)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let file = upload_file(&app, &staff, "Q3 figures.txt", DATA, "owner", None, &[]).await;
    let (link, _) = make_link(&staff, file.id.as_str(), &[("max_downloads", "2")]).await;

    // nginx reads `Range` its own way (it drops the bad `1-0` and sends the rest, byte 0
    // included): such a header counts.
    let stranger = Browser::new(&nginx.base);
    let tricky = stranger
        .client
        .get(stranger.url(&format!("{link}/download")))
        .header("range", "bytes=1-0,0-")
        .send()
        .await
        .unwrap();
    assert!(tricky.status().is_success(), "{}", tricky.status());
    assert_eq!(
        downloads_of(&app, &link),
        1,
        "an odd range through nginx counts"
    );

    let recipient = Browser::new(&nginx.base);
    let whole = recipient.get(&format!("{link}/download")).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert!(whole.headers().get("x-accel-redirect").is_none());
    assert_eq!(whole.headers()["referrer-policy"], "no-referrer");
    assert_eq!(whole.bytes().await.unwrap(), DATA);
    assert_eq!(downloads_of(&app, &link), 2);
    // Used up; the recipient still gets the rest of its own download, nobody else anything.
    let rest = recipient
        .client
        .get(recipient.url(&format!("{link}/download")))
        .header("range", "bytes=3-6")
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(rest.bytes().await.unwrap(), &DATA[3..7]);
    assert_eq!(downloads_of(&app, &link), 2);
    let gone = Browser::new(&nginx.base)
        .get(&format!("{link}/download"))
        .await;
    assert_eq!(gone.status(), StatusCode::GONE);
    let again = recipient
        .client
        .get(recipient.url(&format!("{link}/download")))
        .header("range", "bytes=1-0,0-")
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::GONE,
        "no second copy through an odd range"
    );
    drop(nginx);
}

#[tokio::test]
async fn two_instances_racing_for_the_last_downloads_give_out_exactly_the_limit() {
    let site = crate::scale_out::two_instances().await;
    let staff = site.one.logged_in("stella", Role::Staff).await;
    let file = upload_file(
        &site.one,
        &staff,
        "Q3 figures.txt",
        DATA,
        "owner",
        None,
        &[],
    )
    .await;
    let (link, _) = make_link(&staff, file.id.as_str(), &[("max_downloads", "3")]).await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let base = if i % 2 == 0 {
            &site.one.base
        } else {
            &site.two.base
        };
        let url = format!("{base}{link}/download");
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            barrier.wait().await;
            client.get(&url).send().await.expect("GET").status()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let served = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let gone = statuses.iter().filter(|s| **s == StatusCode::GONE).count();
    assert_eq!((served, gone), (3, 17), "{statuses:?}");
    assert_eq!(downloads_of(&site.one, &link), 3);
}

#[tokio::test]
async fn downloads_of_an_unlimited_link_are_written_within_seconds_and_at_a_clean_stop() {
    let app = spawn_app().await;
    let (staff, file_id) = staff_and_file(&app).await;
    let (link, _) = make_link(&staff, &file_id, &[]).await;
    for _ in 0..5 {
        let response = app.browser().get(&format!("{link}/download")).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while downloads_of(&app, &link) < 5 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(downloads_of(&app, &link), 5, "written in the background");
    let page = staff.get_text(&format!("/admin/files/{file_id}")).await;
    assert!(page.contains("5 (no limit)"), "the count shows");

    // The real binary, stopped by SIGTERM right after its downloads: nothing is lost.
    let dir = tempfile::tempdir().unwrap();
    let served = crate::helpers::serve(
        dir.path(),
        &[("PRIVATE_MEDIA_ADMIN_PASSWORD", crate::helpers::PASSWORD)],
    );
    let base = format!("http://127.0.0.1:{}", served.port);
    let admin = Browser::new(&base);
    assert_eq!(
        admin
            .login("admin", crate::helpers::PASSWORD, None)
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let stored = admin.upload("owner", &[("figures.txt", DATA)]).await;
    let file_id = location(&stored).rsplit('/').next().unwrap().to_owned();
    let (link, _) = make_link(&admin, &file_id, &[]).await;
    for _ in 0..7 {
        let response = Browser::new(&base).get(&format!("{link}/download")).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let mut served = served;
    let pid = served.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = served.child.wait().unwrap();
    assert!(status.success(), "a clean stop: {status:?}");
    let mut conn = diesel::SqliteConnection::establish(
        dir.path().join("private-media.sqlite3").to_str().unwrap(),
    )
    .unwrap();
    let downloads: i64 = share_links::table
        .select(share_links::downloads)
        .first(&mut conn)
        .unwrap();
    assert_eq!(downloads, 7, "the counts were written at the stop");
}
