//! Someone who can rename entries inside the storage root (a co-tenant of a shared folder, a
//! sync job) swaps a directory for a symlink to somewhere else and back, as fast as the
//! kernel allows (`renameat2(RENAME_EXCHANGE)`), while a plain user downloads through both
//! routes. Not one byte from outside the root may come back.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use private_media::config::PathRule;
use private_media::domain::Role;
use rustix::fs::{CWD, RenameFlags, renameat_with};

use crate::helpers::{Browser, spawn_app_with, upload_file};

const INSIDE: &[u8] = b"the file that belongs inside the storage root";
const FOREIGN: &[u8] = b"FOREIGN-BYTES-FROM-OUTSIDE-THE-ROOT";
const RACE: Duration = Duration::from_secs(3);

/// Swaps `a` and `b` until `stop` is set; returns how many swaps it made.
fn exchange_until(a: PathBuf, b: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut swaps = 0;
        while !stop.load(Ordering::Relaxed) {
            renameat_with(CWD, &a, CWD, &b, RenameFlags::EXCHANGE).expect("exchange");
            swaps += 1;
        }
        // Leave the real folder in place.
        if std::fs::symlink_metadata(&a)
            .expect("a")
            .file_type()
            .is_symlink()
        {
            renameat_with(CWD, &a, CWD, &b, RenameFlags::EXCHANGE).expect("exchange back");
        }
        swaps
    })
}

/// Next to the real parent folder of `key`, a symlink to a folder outside the root that
/// holds a file of the same name with foreign bytes.
fn plant_decoy(root: &Path, outside: &Path, key: &str) -> (PathBuf, PathBuf) {
    let (parent, name) = key.rsplit_once('/').expect("keys have a folder");
    let decoy_dir = outside.join("decoy");
    std::fs::create_dir_all(&decoy_dir).expect("decoy dir");
    std::fs::write(decoy_dir.join(name), FOREIGN).expect("decoy file");
    let real = root.join(parent);
    let link = root.join(format!("{parent}-link"));
    std::os::unix::fs::symlink(&decoy_dir, &link).expect("symlink");
    (real, link)
}

#[derive(Default)]
struct Tally {
    inside: AtomicU64,
    refused: AtomicU64,
    foreign: AtomicU64,
}

async fn hammer(browser: Browser, url: String, tally: Arc<Tally>) {
    let end = Instant::now() + RACE;
    while Instant::now() < end {
        let response = browser.get(&url).await;
        let status = response.status().as_u16();
        let body = response.bytes().await.unwrap_or_default();
        if body.windows(FOREIGN.len()).any(|w| w == FOREIGN) {
            tally.foreign.fetch_add(1, Ordering::Relaxed);
        } else if status == 200 && body.as_ref() == INSIDE {
            tally.inside.fetch_add(1, Ordering::Relaxed);
        } else {
            assert_eq!(status, 404, "only the file or a 404, never anything else");
            tally.refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_directory_swapped_for_a_symlink_never_serves_a_foreign_byte() {
    let app = spawn_app_with(|s| s.access.path_rule = PathRule::Authenticated).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let plain = app.logged_in("paul", Role::User).await;
    let file = upload_file(
        &app,
        &staff,
        "report.txt",
        INSIDE,
        "authenticated",
        None,
        &[],
    )
    .await;
    let outside = app
        .storage_root()
        .parent()
        .expect("data dir")
        .join("outside");
    let (real, link) = plant_decoy(&app.storage_root(), &outside, file.storage_key.as_str());

    let stop = Arc::new(AtomicBool::new(false));
    let swapper = exchange_until(real, link, Arc::clone(&stop));
    let tally = Arc::new(Tally::default());
    let routes = [
        format!("/files/{}/download", file.id),
        format!("/private-media/{}", file.storage_key),
    ];
    let mut clients = Vec::new();
    for url in &routes {
        for _ in 0..4 {
            let browser = Browser::with_cookies_of(&plain, &app.base);
            clients.push(tokio::spawn(hammer(
                browser,
                url.clone(),
                Arc::clone(&tally),
            )));
        }
    }
    for client in clients {
        client.await.expect("client");
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = swapper.join().expect("swapper");

    let (inside, refused, foreign) = (
        tally.inside.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
        tally.foreign.load(Ordering::Relaxed),
    );
    eprintln!("{swaps} swaps; {inside} served, {refused} refused, {foreign} foreign");
    assert_eq!(foreign, 0, "bytes from outside the root were served");
    assert!(swaps > 100, "the race did not run");
    assert!(
        inside > 0 && refused > 0,
        "both states of the race were seen"
    );
    // The row's file is intact, and so is the decoy.
    assert_eq!(
        std::fs::read(app.storage_root().join(file.storage_key.as_str())).expect("file"),
        INSIDE
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_during_the_swap_never_removes_a_file_outside_the_root() {
    let app = spawn_app_with(|_| {}).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let outside = app
        .storage_root()
        .parent()
        .expect("data dir")
        .join("outside");
    let mut decoys = Vec::new();
    let (mut deleted, mut refused) = (0, 0);
    for round in 0..20 {
        let name = format!("doc{round}.txt");
        let file = upload_file(&app, &staff, &name, INSIDE, "staff", None, &[]).await;
        let (parent, file_name) = file.storage_key.as_str().rsplit_once('/').expect("folder");
        let decoy_dir = outside.join(format!("decoy{round}"));
        std::fs::create_dir_all(&decoy_dir).expect("decoy dir");
        std::fs::write(decoy_dir.join(file_name), FOREIGN).expect("decoy");
        decoys.push(decoy_dir.join(file_name));
        let link = app.storage_root().join(format!("{parent}-link{round}"));
        std::os::unix::fs::symlink(&decoy_dir, &link).expect("symlink");
        let stop = Arc::new(AtomicBool::new(false));
        let swapper = exchange_until(app.storage_root().join(parent), link, Arc::clone(&stop));
        let token = staff.csrf_token(&format!("/admin/files/{}", file.id)).await;
        let response = staff
            .post_form(
                &format!("/admin/files/{}/delete", file.id),
                &[("csrf_token", &token)],
            )
            .await;
        stop.store(true, Ordering::Relaxed);
        swapper.join().expect("swapper");
        // The swap may have stopped either way round: the real folder is the one that is
        // not a symlink.
        let (real, link) = (
            app.storage_root().join(parent),
            app.storage_root().join(format!("{parent}-link{round}")),
        );
        let real = if real.is_symlink() { link } else { real };
        let object_left = real.join(file_name).exists();
        let row_left = app.file_rows().iter().any(|row| row.id == file.id);
        match response.status().as_u16() {
            // Deleted: row and object both gone.
            303 => {
                deleted += 1;
                assert!(
                    !row_left && !object_left,
                    "round {round}: row {row_left}, object {object_left}"
                );
            }
            // Refused while a symlink stood in the way: nothing changed.
            409 => {
                refused += 1;
                assert!(
                    row_left && object_left,
                    "round {round}: row {row_left}, object {object_left}"
                );
            }
            other => panic!("round {round}: delete answered {other}"),
        }
    }
    eprintln!("{deleted} deleted, {refused} refused during the swap");
    for decoy in decoys {
        assert_eq!(
            std::fs::read(&decoy).expect("a file outside the root was removed"),
            FOREIGN
        );
    }
}
