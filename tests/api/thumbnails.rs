//! Private thumbnails: made at upload from real JPEG, PNG, GIF and WebP files (EXIF orientation
//! applied, no metadata kept), served behind the file's own rule like its download, refused
//! for images the decoder must not touch, removed and remade with their file, backfilled by
//! the CLI, stored in S3 as on the filesystem, and served to share-link holders uncounted.

use std::io::Cursor;

use chrono::Utc;
use diesel::prelude::*;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};
use private_media::db::models::file::FileRow;
use private_media::db::schema::{files, share_links};
use private_media::domain::{FileId, Role};
use reqwest::StatusCode;

use crate::helpers::s3_server::{LOCATION, S3Server};
use crate::helpers::{
    BOUNDARY, Browser, Part, TestApp, location, multipart_body, spawn_app, spawn_app_with,
    upload_file,
};

const RED: Rgb<u8> = Rgb([220, 20, 20]);
const BLUE: Rgb<u8> = Rgb([20, 20, 220]);

/// A `width`×`height` picture, blue but for its red top-left quarter.
pub(crate) fn picture(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        if x < width / 2 && y < height / 2 {
            RED
        } else {
            BLUE
        }
    })
}

pub(crate) fn encoded(image: RgbImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let image = DynamicImage::ImageRgb8(image);
    match format {
        // The GIF and WebP encoders want the alpha channel.
        ImageFormat::Gif | ImageFormat::WebP => DynamicImage::ImageRgba8(image.to_rgba8())
            .write_to(&mut out, format)
            .unwrap(),
        _ => image.write_to(&mut out, format).unwrap(),
    }
    out.into_inner()
}

/// A JPEG whose EXIF (an APP1 segment written by hand) says "turn 90° clockwise to show"
/// (orientation 6) and carries a GPS IFD with a map datum nobody should learn.
fn rotated_jpeg_with_gps(width: u32, height: u32) -> Vec<u8> {
    let jpeg = encoded(picture(width, height), ImageFormat::Jpeg);
    let mut tiff: Vec<u8> = Vec::new();
    tiff.extend_from_slice(b"MM\x00\x2a\x00\x00\x00\x08");
    // IFD0 at 8: two entries, then the next-IFD offset (none).
    tiff.extend_from_slice(&2u16.to_be_bytes());
    tiff.extend_from_slice(&[0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1, 0x00, 0x06, 0, 0]);
    tiff.extend_from_slice(&[0x88, 0x25, 0x00, 0x04, 0, 0, 0, 1]);
    tiff.extend_from_slice(&38u32.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(tiff.len(), 38);
    // The GPS IFD: GPSMapDatum, ASCII, 12 bytes at 56.
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&[0x00, 0x12, 0x00, 0x02, 0, 0, 0, 12]);
    tiff.extend_from_slice(&56u32.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(tiff.len(), 56);
    tiff.extend_from_slice(b"SECRETPLACE\0");
    let mut app1 = vec![0xff, 0xe1];
    app1.extend_from_slice(&u16::try_from(2 + 6 + tiff.len()).unwrap().to_be_bytes());
    app1.extend_from_slice(b"Exif\0\0");
    app1.extend_from_slice(&tiff);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    chunk.extend_from_slice(&body);
    chunk.extend_from_slice(&crc32(&body).to_be_bytes());
    chunk
}

/// A PNG of a few KiB whose header claims 20,000 × 20,000 pixels (1.2 GB decoded).
fn decompression_bomb() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&20_000u32.to_be_bytes());
    ihdr.extend_from_slice(&20_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png.extend(png_chunk(b"IHDR", &ihdr));
    png.extend(png_chunk(b"IDAT", &[0x78, 0x9c].repeat(2048)));
    png.extend(png_chunk(b"IEND", &[]));
    png
}

/// A 1×1 PNG of a few hundred KiB whose ICC profile inflates to `mib` MiB.
fn profile_bomb(mib: usize) -> Vec<u8> {
    use std::io::Write;
    let png = encoded(picture(1, 1), ImageFormat::Png);
    let mut profile = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..mib {
        profile.write_all(&zeros).unwrap();
    }
    let mut iccp = b"bomb\0\0".to_vec();
    iccp.extend_from_slice(&profile.finish().unwrap());
    // The signature and IHDR take the first 33 bytes; the profile must come before the pixels.
    let mut bomb = png[..33].to_vec();
    bomb.extend(png_chunk(b"iCCP", &iccp));
    bomb.extend_from_slice(&png[33..]);
    bomb
}

fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory_with_format(bytes, ImageFormat::Jpeg).expect("a JPEG thumbnail")
}

fn close(a: Rgb<u8>, b: Rgb<u8>) -> bool {
    a.0.iter().zip(b.0.iter()).all(|(x, y)| x.abs_diff(*y) < 60)
}

fn row(app: &TestApp, id: &FileId) -> FileRow {
    app.file_rows()
        .into_iter()
        .find(|f| &f.id == id)
        .expect("the row")
}

async fn thumbnail(browser: &Browser, id: &FileId, size: &str) -> reqwest::Response {
    browser
        .get(&format!("/files/{id}/thumbnail?size={size}"))
        .await
}

async fn image_of(response: reqwest::Response) -> DynamicImage {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/jpeg");
    decode(&response.bytes().await.unwrap())
}

#[tokio::test]
async fn every_supported_format_gets_both_sizes_fitted_and_never_enlarged() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let cases = [
        ("wide.jpg", ImageFormat::Jpeg, (1200, 600)),
        ("tall.png", ImageFormat::Png, (300, 900)),
        ("anim.gif", ImageFormat::Gif, (400, 400)),
        ("small.webp", ImageFormat::WebP, (100, 50)),
    ];
    for (name, format, (w, h)) in cases {
        let bytes = encoded(picture(w, h), format);
        let file = upload_file(&app, &staff, name, &bytes, "staff", None, &[]).await;
        assert!(file.thumbnails, "{name}");
        assert_eq!(
            (file.image_width, file.image_height),
            (Some(w as i32), Some(h as i32))
        );
        for (size, edge) in [("small", 160u32), ("medium", 640u32)] {
            let thumb = image_of(thumbnail(&staff, &file.id, size).await).await;
            let scale = (f64::from(edge) / f64::from(w.max(h))).min(1.0);
            let expected = (
                (f64::from(w) * scale).round() as u32,
                (f64::from(h) * scale).round() as u32,
            );
            let got = (thumb.width(), thumb.height());
            assert!(
                got.0.abs_diff(expected.0) <= 1 && got.1.abs_diff(expected.1) <= 1,
                "{name} {size}: {got:?}, expected {expected:?}"
            );
            assert!(
                close(thumb.to_rgb8().get_pixel(2, 2).to_owned(), RED),
                "{name} {size}"
            );
        }
        // The default size is the small one.
        let default = image_of(staff.get(&format!("/files/{}/thumbnail", file.id)).await).await;
        assert!(default.width() <= 160 && default.height() <= 160);
        let key = file.storage_key.as_str();
        let objects = app.stored_objects();
        for size in ["small", "medium"] {
            assert!(
                objects.contains(&format!("{key}.thumbs/{size}.jpg")),
                "{objects:?}"
            );
        }
    }
    // Lists and the detail page show them, lazily, named by the file's name.
    let listed = staff.get_text("/files").await;
    let admin = staff.get_text("/admin/files").await;
    for page in [&listed, &admin] {
        assert!(page.contains(r#"alt="wide.jpg" loading="lazy""#), "{page}");
        assert!(page.contains("/thumbnail\""), "{page}");
    }
    let wide = app
        .file_rows()
        .into_iter()
        .find(|f| f.original_name == "wide.jpg")
        .unwrap();
    let detail = staff.get_text(&format!("/admin/files/{}", wide.id)).await;
    assert!(detail.contains("1200 × 600 pixels"), "{detail}");
    assert!(
        detail.contains(&format!("/files/{}/thumbnail?size=medium", wide.id)),
        "{detail}"
    );
}

#[tokio::test]
async fn exif_orientation_is_applied_and_no_metadata_is_kept() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let original = rotated_jpeg_with_gps(200, 100);
    assert!(original.windows(11).any(|w| w == b"SECRETPLACE"));
    let file = upload_file(&app, &staff, "phone.jpg", &original, "staff", None, &[]).await;
    // As shown: 100 wide, 200 tall.
    assert_eq!(
        (file.image_width, file.image_height),
        (Some(100), Some(200))
    );
    for size in ["small", "medium"] {
        let response = thumbnail(&staff, &file.id, size).await;
        let bytes = response.bytes().await.unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"Exif\0\0"),
            "{size}: EXIF kept"
        );
        assert!(
            !bytes.windows(11).any(|w| w == b"SECRETPLACE"),
            "{size}: GPS kept"
        );
        let thumb = decode(&bytes).to_rgb8();
        let (w, h) = thumb.dimensions();
        assert!(h > w, "{size}: {w}×{h} is not upright");
        // The stored top-left (red) is the shown top-right after a quarter turn clockwise.
        assert!(close(*thumb.get_pixel(w - 3, 2), RED), "{size}");
        assert!(close(*thumb.get_pixel(2, 2), BLUE), "{size}");
    }
}

#[tokio::test]
async fn the_thumbnail_asks_the_files_own_rule_exactly_as_its_download() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let bob = app.logged_in("bob", Role::User).await;
    let carol = app.logged_in("carol", Role::User).await;
    let root = app.logged_in("root", Role::Superuser).await;
    let anonymous = app.browser();
    let bytes = encoded(picture(300, 200), ImageFormat::Png);
    // (rule, owner, readers, who may, who may not)
    let owner_file = upload_file(&app, &staff, "o.png", &bytes, "owner", Some("bob"), &[]).await;
    let staff_file = upload_file(&app, &staff, "s.png", &bytes, "staff", None, &[]).await;
    let everyone = upload_file(&app, &staff, "a.png", &bytes, "authenticated", None, &[]).await;
    let listed = upload_file(&app, &staff, "u.png", &bytes, "users", None, &["carol"]).await;
    let cases: [(&FileRow, Vec<&Browser>, Vec<&Browser>); 4] = [
        (&owner_file, vec![&bob, &staff, &root], vec![&carol]),
        (&staff_file, vec![&staff, &root], vec![&bob, &carol]),
        (&everyone, vec![&bob, &carol, &staff, &root], vec![]),
        (&listed, vec![&carol, &staff, &root], vec![&bob]),
    ];
    for (file, allowed, refused) in cases {
        for browser in allowed {
            for size in ["small", "medium"] {
                let thumb = thumbnail(browser, &file.id, size).await;
                assert_eq!(
                    thumb.status(),
                    StatusCode::OK,
                    "{} {size}",
                    file.original_name
                );
                let download = browser.get(&format!("/files/{}/download", file.id)).await;
                assert_eq!(download.status(), StatusCode::OK);
            }
        }
        for browser in refused {
            let thumb = thumbnail(browser, &file.id, "small").await;
            assert_eq!(
                thumb.status(),
                StatusCode::FORBIDDEN,
                "{}",
                file.original_name
            );
            assert_eq!(
                thumb.headers()["cache-control"],
                "private, no-cache, no-store"
            );
        }
        let thumb = thumbnail(&anonymous, &file.id, "small").await;
        assert_eq!(thumb.status(), StatusCode::SEE_OTHER);
        assert!(
            location(&thumb).starts_with("/login?next="),
            "{}",
            location(&thumb)
        );
    }
    // An unknown id is a 404, and only to a logged-in user.
    let unknown = FileId::generate();
    assert_eq!(
        thumbnail(&bob, &unknown, "small").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        thumbnail(&anonymous, &unknown, "small").await.status(),
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_thumbnail_answers_as_a_download_does() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let bytes = encoded(picture(500, 500), ImageFormat::Jpeg);
    let file = upload_file(&app, &staff, "p.jpg", &bytes, "staff", None, &[]).await;
    let response = thumbnail(&staff, &file.id, "small").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["cache-control"], "private, no-cache");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let length = headers["content-length"].to_str().unwrap().to_owned();

    let again = staff
        .client
        .get(staff.url(&format!("/files/{}/thumbnail", file.id)))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["cache-control"], "private, no-cache");

    let head = staff
        .client
        .head(staff.url(&format!("/files/{}/thumbnail?size=small", file.id)))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"].to_str().unwrap(), length);
    assert_eq!(head.headers()["etag"].to_str().unwrap(), etag);
    assert!(head.bytes().await.unwrap().is_empty());

    for size in ["large", "", "SMALL"] {
        let bad = thumbnail(&staff, &file.id, size).await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST, "{size:?}");
    }
    // A file that is no image has none.
    let pdf = upload_file(
        &app,
        &staff,
        "doc.pdf",
        b"%PDF-1.4 a document",
        "staff",
        None,
        &[],
    )
    .await;
    assert!(!pdf.thumbnails);
    assert_eq!(
        thumbnail(&staff, &pdf.id, "small").await.status(),
        StatusCode::NOT_FOUND
    );
    // And lists give it a type icon instead.
    let page = staff.get_text("/files").await;
    assert!(
        page.contains(r#"class="type-icon type-document""#),
        "{page}"
    );
    assert!(page.contains(r#"alt="p.jpg""#), "{page}");
}

#[tokio::test]
async fn the_path_view_never_serves_a_thumbnail() {
    let app = spawn_app_with(|s| {
        s.access.path_rule = private_media::config::PathRule::Authenticated;
    })
    .await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let root = app.logged_in("root", Role::Superuser).await;
    let bytes = encoded(picture(300, 300), ImageFormat::Png);
    let file = upload_file(&app, &staff, "p.png", &bytes, "owner", None, &[]).await;
    let key = file.storage_key.as_str();
    assert_eq!(
        root.get(&format!("/private-media/{key}")).await.status(),
        StatusCode::OK
    );
    for size in ["small", "medium"] {
        let derived = root
            .get(&format!("/private-media/{key}.thumbs/{size}.jpg"))
            .await;
        assert_eq!(derived.status(), StatusCode::NOT_FOUND, "{size}");
    }
}

#[tokio::test]
async fn bombs_and_broken_images_are_stored_without_thumbnails() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let bomb = decompression_bomb();
    assert!(bomb.len() < 10_000);
    let mut truncated = encoded(picture(800, 800), ImageFormat::Png);
    truncated.truncate(truncated.len() / 3);
    let mut cut_jpeg = encoded(picture(800, 800), ImageFormat::Jpeg);
    cut_jpeg.truncate(600);
    for (name, bytes) in [
        ("bomb.png", &bomb),
        ("cut.png", &truncated),
        ("cut.jpg", &cut_jpeg),
    ] {
        let file = upload_file(&app, &staff, name, bytes, "staff", None, &[]).await;
        assert!(!file.thumbnails, "{name}");
        assert_eq!(file.image_width, None);
        assert_eq!(
            thumbnail(&staff, &file.id, "small").await.status(),
            StatusCode::NOT_FOUND
        );
        // The file itself is there, byte for byte.
        let download = staff.get(&format!("/files/{}/download", file.id)).await;
        assert_eq!(download.bytes().await.unwrap().as_ref(), bytes.as_slice());
        assert!(
            !app.stored_objects().iter().any(|o| o.contains(".thumbs/")),
            "{name}: {:?}",
            app.stored_objects()
        );
    }
    // The server is fine and still makes thumbnails.
    assert_eq!(app.browser().get("/healthz").await.status(), StatusCode::OK);
    let fine = encoded(picture(64, 64), ImageFormat::Png);
    assert!(
        upload_file(&app, &staff, "fine.png", &fine, "staff", None, &[])
            .await
            .thumbnails
    );
}

#[tokio::test]
async fn max_pixels_and_enabled_are_obeyed() {
    let app = spawn_app_with(|s| s.thumbnails.max_pixels = 10_000).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let over = encoded(picture(101, 100), ImageFormat::Png);
    let under = encoded(picture(100, 100), ImageFormat::Png);
    assert!(
        !upload_file(&app, &staff, "over.png", &over, "staff", None, &[])
            .await
            .thumbnails
    );
    assert!(
        upload_file(&app, &staff, "under.png", &under, "staff", None, &[])
            .await
            .thumbnails
    );

    let off = spawn_app_with(|s| s.thumbnails.enabled = false).await;
    let staff = off.logged_in("stella", Role::Staff).await;
    let file = upload_file(&off, &staff, "p.png", &under, "staff", None, &[]).await;
    assert!(!file.thumbnails);
    assert!(!off.stored_objects().iter().any(|o| o.contains(".thumbs/")));
}

async fn delete(staff: &Browser, id: &FileId) {
    let token = staff.csrf_token(&format!("/admin/files/{id}")).await;
    let response = staff
        .post_form(
            &format!("/admin/files/{id}/delete"),
            &[("csrf_token", &token)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn deleting_a_file_deletes_its_thumbnails_and_replacing_remakes_them() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let first = encoded(picture(400, 200), ImageFormat::Png);
    let file = upload_file(&app, &staff, "a.png", &first, "staff", None, &[]).await;
    let old_key = file.storage_key.as_str().to_owned();

    let second = encoded(picture(100, 300), ImageFormat::Jpeg);
    let token = staff.csrf_token(&format!("/admin/files/{}", file.id)).await;
    let replaced = staff
        .client
        .post(staff.url(&format!("/admin/files/{}/replace", file.id)))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart_body(&[
            Part::Text("csrf_token", &token),
            Part::File("b.jpg", &second),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::SEE_OTHER);
    let now = row(&app, &file.id);
    assert!(now.thumbnails);
    assert_eq!((now.image_width, now.image_height), (Some(100), Some(300)));
    let new_key = now.storage_key.as_str().to_owned();
    assert_ne!(new_key, old_key);
    let objects = app.stored_objects();
    assert!(
        !objects.iter().any(|o| o.starts_with(&old_key)),
        "{objects:?}"
    );
    assert_eq!(objects.len(), 3, "{objects:?}");
    // The emptied folder of the old thumbnails goes with them.
    let root = app.storage_root();
    assert!(!root.join(format!("{old_key}.thumbs")).exists());
    assert!(root.join(format!("{new_key}.thumbs")).is_dir());
    let thumb = image_of(thumbnail(&staff, &file.id, "small").await).await;
    assert_eq!((thumb.width(), thumb.height()), (53, 160));

    delete(&staff, &file.id).await;
    assert_eq!(app.stored_objects(), Vec::<String>::new());
    assert!(!root.join(format!("{new_key}.thumbs")).exists());
    // Bulk delete goes the same way.
    let a = upload_file(&app, &staff, "x.png", &first, "staff", None, &[]).await;
    assert_eq!(app.stored_objects().len(), 3);
    let token = staff.csrf_token("/admin/files").await;
    let bulk = staff
        .post_form(
            "/admin/files/bulk/delete",
            &[("csrf_token", &token), ("ids", a.id.as_str())],
        )
        .await;
    assert!(bulk.status().is_redirection() || bulk.status().is_success());
    assert_eq!(app.stored_objects(), Vec::<String>::new());
}

#[tokio::test]
async fn thumbnails_live_in_s3_next_to_the_original_and_go_with_it() {
    let server = S3Server::start().await;
    for querystring_auth in [true, false] {
        let s3 = server.settings(querystring_auth);
        let app = spawn_app_with(|s| {
            s.storages.insert(
                "s3".to_owned(),
                private_media::config::StorageSettings::S3(s3),
            );
            s.upload.storage = "s3".to_owned();
        })
        .await;
        let staff = app.logged_in("stella", Role::Staff).await;
        let bytes = encoded(picture(900, 300), ImageFormat::Jpeg);
        let file = upload_file(&app, &staff, "s3.jpg", &bytes, "staff", None, &[]).await;
        assert!(file.thumbnails);
        let key = file.storage_key.as_str();
        let mut objects = server.objects();
        objects.retain(|o| o.contains(key));
        assert_eq!(
            objects,
            vec![
                format!("{LOCATION}/{key}"),
                format!("{LOCATION}/{key}.thumbs/medium.jpg"),
                format!("{LOCATION}/{key}.thumbs/small.jpg"),
            ]
        );
        let small = server.object_bytes(&format!("{LOCATION}/{key}.thumbs/small.jpg"));
        assert_eq!(decode(&small).width(), 160);
        let response = thumbnail(&staff, &file.id, "small").await;
        if querystring_auth {
            assert_eq!(response.status(), StatusCode::FOUND);
            assert_eq!(response.headers()["cache-control"], "private, no-cache");
        } else {
            assert_eq!(response.bytes().await.unwrap().as_ref(), small.as_slice());
        }
        delete(&staff, &file.id).await;
        assert!(
            !server.objects().iter().any(|o| o.contains(key)),
            "{:?}",
            server.objects()
        );
    }
}

#[tokio::test]
async fn the_backfill_command_makes_missing_thumbnails_and_fails_loudly() {
    let app = spawn_app_with(|s| s.thumbnails.enabled = false).await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let bytes = encoded(picture(320, 240), ImageFormat::Png);
    let file = upload_file(&app, &staff, "old.png", &bytes, "staff", None, &[]).await;
    let text = upload_file(
        &app,
        &staff,
        "notes.txt",
        b"plain words",
        "staff",
        None,
        &[],
    )
    .await;
    assert!(!file.thumbnails);

    let out = app.cli(&["thumbnails", "--missing"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("made {} old.png (320×240)", file.id)),
        "{stdout}"
    );
    assert!(
        stdout.contains("thumbnails: 1 made, 0 failed, 0 skipped"),
        "{stdout}"
    );
    assert!(!stdout.contains(text.id.as_str()), "{stdout}");
    let now = row(&app, &file.id);
    assert!(now.thumbnails);
    assert_eq!((now.image_width, now.image_height), (Some(320), Some(240)));
    assert_eq!(
        thumbnail(&staff, &file.id, "medium").await.status(),
        StatusCode::OK
    );

    // Nothing is missing now. A broken image gets none, and says why, but is no failure of
    // the command: a nightly `--missing` must not fail for ever over one bad upload.
    let out = app.cli(&["thumbnails", "--missing"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("thumbnails: 0 made, 0 failed"));
    let mut cut = encoded(picture(500, 500), ImageFormat::Png);
    cut.truncate(cut.len() / 2);
    let broken = upload_file(&app, &staff, "cut.png", &cut, "staff", None, &[]).await;
    let out = app.cli(&["thumbnails", "--storage", "local"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "skipped {} cut.png: the image cannot be decoded",
            broken.id
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("thumbnails: 1 made, 0 failed, 1 skipped"),
        "{stdout}"
    );
    // A size that cannot be stored while they are made again leaves the file with none
    // (never a mismatched pair), and `--missing` picks it up once the storage is sound.
    let root = app.storage_root();
    let folder = root.join(format!("{}.thumbs", file.storage_key));
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::write(&folder, b"in the way").unwrap();
    let out = app.cli(&["thumbnails"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!("FAILED {} old.png", file.id)),
        "{stdout}"
    );
    assert!(!row(&app, &file.id).thumbnails);
    assert_eq!(
        thumbnail(&staff, &file.id, "small").await.status(),
        StatusCode::NOT_FOUND
    );
    std::fs::remove_file(&folder).unwrap();
    let out = app.cli(&["thumbnails", "--missing"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("made {} old.png", file.id)),
        "{stdout}"
    );
    assert!(row(&app, &file.id).thumbnails);

    let unknown = app.cli(&["thumbnails", "--storage", "nowhere"], None);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nowhere"));
}

/// Runs `private-media ARGS` with its data segment (heap and anonymous mappings) limited to
/// `mib` MiB: an allocation past it fails, and the process dies.
fn cli_within(app: &TestApp, mib: u64, args: &[&str]) -> std::process::Output {
    let mut shell = std::process::Command::new("sh");
    shell.args([
        "-c",
        "ulimit -d \"$0\" && exec \"$@\"",
        &(mib * 1024).to_string(),
        env!("CARGO_BIN_EXE_private-media"),
    ]);
    let mut command = crate::helpers::configured(shell, app.data_dir.path(), args);
    command
        .env("DATABASE_URL", app.database_url())
        .stdin(std::process::Stdio::null());
    command.output().unwrap()
}

#[tokio::test]
async fn images_that_would_take_much_memory_to_decode_are_refused_before_they_take_it() {
    let app = spawn_app().await;
    app.add_user("stella", Role::Staff);
    let dir = tempfile::tempdir().unwrap();
    // A 1×1 picture whose profile inflates to 320 MiB: the decoder used to inflate it up to its
    // allocation limit for the whole image (8 bytes per allowed pixel, 400 MB).
    let bomb = dir.path().join("profile.png");
    std::fs::write(&bomb, profile_bomb(320)).unwrap();
    let path = bomb.to_str().unwrap();
    let out = cli_within(
        &app,
        250,
        &["upload", path, "--access", "staff", "--as", "stella"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{:?} {stdout} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = app
        .file_rows()
        .into_iter()
        .find(|f| f.original_name == "profile.png")
        .expect("the bomb is stored as a file");
    assert!(stored.thumbnails, "the pixel itself is fine");

    // A progressive CMYK JPEG of 7000 × 7000 (49 MP, under max_pixels) keeps every
    // component's coefficients while it decodes: about 540 MB. Refused from its header.
    let mut jpeg = vec![0xFF, 0xD8];
    // A quantization table, the frame, and a first (DC) scan of all four components.
    jpeg.extend_from_slice(&[0xFF, 0xDB, 0, 67, 0]);
    jpeg.extend_from_slice(&[1; 64]);
    jpeg.extend_from_slice(&[0xFF, 0xC2, 0, 20, 8, 0x1B, 0x58, 0x1B, 0x58, 4]);
    for id in 1..=4u8 {
        jpeg.extend_from_slice(&[id, 0x11, 0]);
    }
    jpeg.extend_from_slice(&[0xFF, 0xDA, 0, 14, 4]);
    for id in 1..=4u8 {
        jpeg.extend_from_slice(&[id, 0]);
    }
    jpeg.extend_from_slice(&[0, 0, 0]);
    jpeg.extend_from_slice(&[0u8; 4096]);
    jpeg.extend_from_slice(&[0xFF, 0xD9]);
    let big = dir.path().join("cmyk.jpg");
    std::fs::write(&big, &jpeg).unwrap();
    let out = cli_within(
        &app,
        250,
        &[
            "upload",
            big.to_str().unwrap(),
            "--access",
            "staff",
            "--as",
            "stella",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("decoding it would take about"), "{stderr}");
    let row = app
        .file_rows()
        .into_iter()
        .find(|f| f.original_name == "cmyk.jpg")
        .expect("stored all the same");
    assert!(!row.thumbnails);
}

/// Thumbnails made for a file that is deleted meanwhile, whose key another file then gets:
/// what the late run wrote (of the old content, in a real race) must not stay over the new
/// file's thumbnails, nor may the late run delete the new file's own.
#[tokio::test]
async fn thumbnails_made_late_for_a_deleted_file_leave_the_next_file_at_its_key_right() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let red = encoded(RgbImage::from_pixel(200, 100, RED), ImageFormat::Png);
    let blue = encoded(RgbImage::from_pixel(200, 100, BLUE), ImageFormat::Png);
    let old = upload_file(&app, &staff, "p.png", &red, "staff", None, &[]).await;
    let old_small = thumbnail(&staff, &old.id, "small")
        .await
        .bytes()
        .await
        .unwrap();
    delete(&staff, &old.id).await;
    let new = upload_file(&app, &staff, "p.png", &blue, "staff", None, &[]).await;
    assert_eq!(
        new.storage_key, old.storage_key,
        "the freed key is used again"
    );
    // The late run of the deleted file's thumbnails: it wrote the old picture over the new
    // file's thumbnail...
    let root = app.storage_root();
    let small = root.join(format!("{}.thumbs/small.jpg", new.storage_key));
    std::fs::write(&small, &old_small).unwrap();
    // ...and now finds its row gone.
    let storage = private_media::storage::open(
        "local",
        &private_media::config::StorageSettings::Filesystem { root: root.clone() },
    )
    .unwrap();
    let thumbnailer = private_media::thumbnails::Thumbnailer::new(
        Default::default(),
        app.data_dir.path().to_owned(),
    );
    let late = thumbnailer.make(&app.db, &storage, &old).await;
    assert!(
        matches!(late, Err(private_media::thumbnails::ThumbError::Changed)),
        "{late:?}"
    );
    let shown = image_of(thumbnail(&staff, &new.id, "small").await).await;
    assert!(close(shown.to_rgb8().get_pixel(10, 10).to_owned(), BLUE));
    assert!(row(&app, &new.id).thumbnails);
}

#[tokio::test]
async fn verify_reports_missing_and_orphan_thumbnails() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let bytes = encoded(picture(320, 240), ImageFormat::Png);
    let kept = upload_file(&app, &staff, "kept.png", &bytes, "staff", None, &[]).await;
    let lost = upload_file(&app, &staff, "lost.png", &bytes, "staff", None, &[]).await;
    let unrecorded = upload_file(&app, &staff, "unrecorded.png", &bytes, "staff", None, &[]).await;
    let verify = |app: &TestApp| {
        let out = app.cli(&["verify"], None);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, stdout) = verify(&app);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("verified 3 file(s) and 9 object(s)"),
        "{stdout}"
    );

    let root = app.storage_root();
    let lost_small = format!("{}.thumbs/small.jpg", lost.storage_key);
    std::fs::remove_file(root.join(&lost_small)).unwrap();
    let stray = format!("{}.thumbs/large.jpg", kept.storage_key);
    std::fs::write(root.join(&stray), b"not ours").unwrap();
    let of_nothing = "gone.png.thumbs/small.jpg";
    std::fs::create_dir_all(root.join("gone.png.thumbs")).unwrap();
    std::fs::write(root.join(of_nothing), b"left behind").unwrap();
    // Thumbnails whose row says it has none: right after the upload they may be under way (no
    // orphan yet); an hour later they are left over.
    {
        let mut conn = app.db.get().unwrap();
        diesel::update(files::table.filter(files::id.eq(&unrecorded.id)))
            .set(files::thumbnails.eq(false))
            .execute(&mut conn)
            .unwrap();
    }
    let (_, stdout) = verify(&app);
    assert!(!stdout.contains("unrecorded"), "{stdout}");
    {
        let mut conn = app.db.get().unwrap();
        let an_hour_ago = Utc::now().naive_utc() - chrono::Duration::hours(1);
        diesel::update(files::table.filter(files::id.eq(&unrecorded.id)))
            .set((
                files::uploaded_at.eq(an_hour_ago),
                files::updated_at.eq(an_hour_ago),
            ))
            .execute(&mut conn)
            .unwrap();
    }

    let (code, stdout) = verify(&app);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "missing local:{lost_small} (file {}): its small thumbnail is not stored",
            lost.id
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "orphan local:{stray}: not a thumbnail of any size this app makes"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "orphan local:{of_nothing}: a thumbnail of no file"
        )),
        "{stdout}"
    );
    for size in ["small", "medium"] {
        assert!(
            stdout.contains(&format!(
                "orphan local:{}.thumbs/{size}.jpg (file {}): a thumbnail its file does not record",
                unrecorded.storage_key, unrecorded.id
            )),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("1 missing, 0 corrupt, 0 unreadable, 4 orphan(s), 0 unusable"),
        "{stdout}"
    );
    // The backfill makes the lost one again, and verify is content.
    let out = app.cli(&["thumbnails"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for extra in [stray.as_str(), of_nothing] {
        std::fs::remove_file(root.join(extra)).unwrap();
    }
    let (code, stdout) = verify(&app);
    assert_eq!(code, Some(0), "{stdout}");
}

/// Makes a share link for `file_id`; returns its path (`/s/…`).
async fn make_link(staff: &Browser, file_id: &FileId, fields: &[(&str, &str)]) -> String {
    let token = staff.csrf_token("/files").await;
    let mut form = vec![("csrf_token", token.as_str())];
    form.extend_from_slice(fields);
    let response = staff
        .post_form(&format!("/admin/files/{file_id}/links"), &form)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = staff.get_text(&format!("/admin/files/{file_id}")).await;
    let start = page
        .find(r#"id="new-link-url" type="text" readonly value=""#)
        .expect("the new link");
    let url = page[start..].split(r#"value=""#).nth(1).unwrap();
    let url = url.split('"').next().unwrap();
    url.strip_prefix(&staff.base).unwrap().to_owned()
}

#[tokio::test]
async fn share_link_holders_get_the_thumbnail_uncounted() {
    let app = spawn_app().await;
    let staff = app.logged_in("stella", Role::Staff).await;
    let bytes = encoded(picture(700, 350), ImageFormat::Png);
    let file = upload_file(&app, &staff, "shared.png", &bytes, "staff", None, &[]).await;
    let link = make_link(&staff, &file.id, &[("max_downloads", "1")]).await;
    let stranger = app.browser();

    let landing = stranger.get_text(&link).await;
    assert!(
        landing.contains(&format!("{link}/thumbnail?size=medium")),
        "{landing}"
    );
    for _ in 0..3 {
        let thumb = stranger.get(&format!("{link}/thumbnail")).await;
        assert_eq!(thumb.headers()["referrer-policy"], "no-referrer");
        assert_eq!(thumb.headers()["cache-control"], "private, no-cache");
        assert_eq!(image_of(thumb).await.width(), 160);
    }
    let medium = image_of(stranger.get(&format!("{link}/thumbnail?size=medium")).await).await;
    assert_eq!(medium.width(), 640);
    assert_eq!(
        stranger
            .get(&format!("{link}/thumbnail?size=huge"))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let downloads: i64 = {
        let mut conn = app.db.get().unwrap();
        share_links::table
            .select(share_links::downloads)
            .first(&mut conn)
            .unwrap()
    };
    assert_eq!(downloads, 0, "a thumbnail is no download");
    // The one download is still there.
    let download = stranger.get(&format!("{link}/download")).await;
    assert_eq!(download.status(), StatusCode::OK);

    // A password: the thumbnail waits for it, as the download does.
    let locked = make_link(&staff, &file.id, &[("password", "open sesame 42")]).await;
    let before = stranger.get(&format!("{locked}/thumbnail")).await;
    assert_eq!(before.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&before), locked);
    let landing = stranger.get_text(&locked).await;
    assert!(!landing.contains("/thumbnail"), "{landing}");

    // Expired and revoked: gone, like the landing page.
    let expired = make_link(&staff, &file.id, &[]).await;
    {
        let mut conn = app.db.get().unwrap();
        diesel::update(share_links::table)
            .set(share_links::expires_at.eq(Utc::now().naive_utc() - chrono::Duration::seconds(1)))
            .execute(&mut conn)
            .unwrap();
    }
    for path in [expired, link] {
        let gone = stranger.get(&format!("{path}/thumbnail")).await;
        assert_eq!(gone.status(), StatusCode::GONE, "{path}");
    }
}
