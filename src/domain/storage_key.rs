//! `StorageKey`: the one type that makes object keys, and so the one place that decides
//! whether a key is safe.
//!
//! A key is relative and `/`-separated, with no empty, `.` or `..` segments, no segment
//! starting with `.` (the filesystem backend keeps its temp files under `.tmp/`), no control
//! character and no backslash, no segment over 255 bytes and no more than 1024 bytes in all.
//! Anything built or parsed into a `StorageKey` therefore stays inside its storage's root.
//!
//! Keys the app makes (`for_upload`, `with_unique_suffix`) are ASCII-safe besides
//! (`A-Z a-z 0-9 . _ -`). Keys it only accepts (`parse`: a row, a URL of the path view, a file
//! `private-media import` registers where an older app left it) may hold spaces and any
//! letter: django-private-storage wrote such names, and their links must keep working.

use chrono::{DateTime, Datelike, Utc};

/// The ending of the folders that hold a file's thumbnails (`KEY.thumbs/small.jpg`). No key
/// the app makes for an upload has a folder ending in it, so a thumbnail's key can never be
/// another file's.
pub const DERIVED_FOLDER_SUFFIX: &str = ".thumbs";

const MAX_KEY_BYTES: usize = 1024;
const MAX_SEGMENT_BYTES: usize = 255;
/// Room left in a file name for a `_xxxxxxx` uniqueness suffix and an extension.
const MAX_STEM_CHARS: usize = 100;
const MAX_EXTENSION_CHARS: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorageKey(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a valid storage key: {0}")]
pub struct InvalidKey(&'static str);

fn valid_segment(segment: &str) -> Result<(), InvalidKey> {
    if segment.is_empty() {
        return Err(InvalidKey("empty segment"));
    }
    if segment.starts_with('.') {
        return Err(InvalidKey("a segment starts with a dot"));
    }
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err(InvalidKey("a segment is too long"));
    }
    if segment.chars().any(char::is_control) {
        return Err(InvalidKey("a control character"));
    }
    if segment.contains('\\') {
        return Err(InvalidKey("a backslash"));
    }
    Ok(())
}

fn ascii_safe(key: &str) -> bool {
    key.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-' || b == b'/')
}

impl StorageKey {
    /// Accepts a key from the database or a URL; refuses anything that could leave the root.
    pub fn parse(value: &str) -> Result<Self, InvalidKey> {
        if value.is_empty() {
            return Err(InvalidKey("empty"));
        }
        if value.len() > MAX_KEY_BYTES {
            return Err(InvalidKey("too long"));
        }
        for segment in value.split('/') {
            valid_segment(segment)?;
        }
        Ok(Self(value.to_owned()))
    }

    /// The key for a new upload: the `upload_to` folder (with `%Y %m %d {user}` filled in)
    /// and the sanitised original name.
    pub fn for_upload(
        upload_to: &str,
        now: DateTime<Utc>,
        username: &str,
        original_name: &str,
    ) -> Self {
        let folder = upload_to
            .replace("%Y", &format!("{:04}", now.year()))
            .replace("%m", &format!("{:02}", now.month()))
            .replace("%d", &format!("{:02}", now.day()))
            .replace("{user}", username);
        let mut segments: Vec<String> = folder
            .split('/')
            .map(|s| sanitize_segment(s, MAX_SEGMENT_BYTES))
            .filter(|s| !s.is_empty())
            .map(not_derived)
            .collect();
        // Neither a file so named: it would stand where a thumbnails folder goes, and keep
        // the file of that name in the same folder from getting thumbnails.
        segments.push(not_derived(sanitize_file_name(original_name)));
        let key = segments.join("/");
        // Only a pathological upload_to can exceed the limit; fall back to the name alone.
        match Self::parse(&key) {
            Ok(key) => key,
            Err(_) => Self(not_derived(sanitize_file_name(original_name))),
        }
    }

    /// The same key with a random `_xxxxxxx` before the extension: a fresh name on a clash.
    pub fn with_unique_suffix(&self) -> Self {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let suffix: String = rand::random::<[u8; 7]>()
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
            .collect();
        let (folder, name) = match self.0.rsplit_once('/') {
            Some((folder, name)) => (Some(folder), name),
            None => (None, self.0.as_str()),
        };
        let (stem, extension) = split_extension(name);
        let name = format!("{stem}_{suffix}{extension}");
        Self(match folder {
            Some(folder) => format!("{folder}/{name}"),
            None => name,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the key holds only `A-Z a-z 0-9 . _ -` and `/`: every key the app makes does.
    pub fn is_ascii_safe(&self) -> bool {
        ascii_safe(&self.0)
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The last segment: the stored file's name.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl std::fmt::Display for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.0)
    }
}

/// A segment renamed if it ends as a thumbnails folder does: a `{user}` such as
/// `photos.thumbs` must not make one, nor a file `photo.png.thumbs` take its place.
fn not_derived(segment: String) -> String {
    match segment.strip_suffix(DERIVED_FOLDER_SUFFIX) {
        Some(stem) => format!("{stem}_thumbs"),
        None => segment,
    }
}

fn split_extension(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// Transliterates to ASCII (`é` → `e`, `ß` → `ss`), keeps `A-Z a-z 0-9 . _ -`, turns runs of
/// anything else into one `_`, and trims separators and leading dots.
fn sanitize_segment(value: &str, max_bytes: usize) -> String {
    let ascii = deunicode::deunicode(value);
    let mut out = String::with_capacity(ascii.len());
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let trimmed = out.trim_matches(|c| c == '_' || c == '.' || c == '-');
    let mut result: String = trimmed.chars().take(max_bytes).collect();
    while result.contains("..") {
        result = result.replace("..", ".");
    }
    result
}

/// The original name's last path component, sanitised, its stem and extension bounded.
fn sanitize_file_name(original: &str) -> String {
    // Browsers on Windows may send a full path; only the last component is a name.
    let last = original.rsplit(['/', '\\']).next().unwrap_or(original);
    let clean = sanitize_segment(last, usize::MAX);
    let (stem, extension) = split_extension(&clean);
    let stem: String = stem.chars().take(MAX_STEM_CHARS).collect();
    let stem = stem.trim_end_matches(['.', '_', '-']);
    let extension: String = if extension.len() <= MAX_EXTENSION_CHARS + 1 {
        extension.to_owned()
    } else {
        String::new()
    };
    let stem = if stem.is_empty() { "file" } else { stem };
    format!("{stem}{extension}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 7, 12, 0, 0).unwrap()
    }

    fn upload(name: &str) -> String {
        StorageKey::for_upload("%Y/%m/%d", at(), "alice", name)
            .as_str()
            .to_owned()
    }

    #[test]
    fn upload_keys_fill_in_the_folder_template() {
        assert_eq!(upload("report.pdf"), "2026/03/07/report.pdf");
        assert_eq!(
            StorageKey::for_upload("users/{user}/%Y", at(), "bob.smith", "a.txt").as_str(),
            "users/bob.smith/2026/a.txt"
        );
        assert_eq!(
            StorageKey::for_upload("", at(), "bob", "a.txt").as_str(),
            "a.txt"
        );
    }

    #[test]
    fn no_upload_folder_looks_like_a_thumbnails_folder() {
        // A user named so would otherwise own keys a thumbnail of another file has.
        assert_eq!(
            StorageKey::for_upload("users/{user}", at(), "red.png.thumbs", "small.jpg").as_str(),
            "users/red.png_thumbs/small.jpg"
        );
        assert_eq!(
            StorageKey::for_upload("old.thumbs/%Y", at(), "bob", "a.jpg").as_str(),
            "old_thumbs/2026/a.jpg"
        );
        // Nor a file: it would stand where the thumbnails of `x` go.
        assert_eq!(upload("x.thumbs"), "2026/03/07/x_thumbs");
    }

    #[test]
    fn hostile_names_stay_inside_the_root() {
        let cases = [
            ("../../etc/passwd", "2026/03/07/passwd"),
            ("a/b", "2026/03/07/b"),
            ("C:\\Windows\\system.ini", "2026/03/07/system.ini"),
            ("résumé final.pdf", "2026/03/07/resume_final.pdf"),
            (
                "Heizölrückstoßabdämpfung.txt",
                "2026/03/07/Heizolruckstossabdampfung.txt",
            ),
            ("evil\0name.txt", "2026/03/07/evil_name.txt"),
            ("..", "2026/03/07/file"),
            (".htaccess", "2026/03/07/htaccess"),
            ("", "2026/03/07/file"),
            ("日本語.png", "2026/03/07/Ri_Ben_Yu.png"),
            ("a\r\nb.txt", "2026/03/07/a_b.txt"),
            ("x..y", "2026/03/07/x.y"),
            ("<script>.html", "2026/03/07/script.html"),
        ];
        for (name, expected) in cases {
            assert_eq!(upload(name), expected, "{name:?}");
            assert!(StorageKey::parse(&upload(name)).is_ok(), "{name:?}");
            assert!(
                StorageKey::parse(&upload(name)).unwrap().is_ascii_safe(),
                "{name:?}"
            );
        }
    }

    #[test]
    fn long_names_are_bounded() {
        let key = upload(&format!("{}.pdf", "a".repeat(300)));
        let name = key.rsplit('/').next().unwrap();
        assert_eq!(name.len(), MAX_STEM_CHARS + 4);
        assert!(name.ends_with(".pdf"));
        let key = upload(&format!("x.{}", "e".repeat(300)));
        assert!(StorageKey::parse(&key).is_ok());
        assert!(key.len() < 300, "{key}");
    }

    #[test]
    fn unique_suffixes_keep_the_extension() {
        let key = StorageKey::parse("2026/03/07/report.pdf").unwrap();
        let fresh = key.with_unique_suffix();
        assert_ne!(fresh, key);
        assert!(fresh.as_str().starts_with("2026/03/07/report_"));
        assert!(fresh.as_str().ends_with(".pdf"));
        assert_eq!(fresh.as_str().len(), key.as_str().len() + 8);
        assert!(StorageKey::parse(fresh.as_str()).is_ok());
        let bare = StorageKey::parse("README").unwrap().with_unique_suffix();
        assert!(bare.as_str().starts_with("README_"));
    }

    #[test]
    fn parse_refuses_keys_that_could_leave_the_root() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            ".tmp/x",
            "a\\b",
            "a\0b",
            "a\tb",
            "a\u{7f}b",
            "a/\u{85}",
            &"a".repeat(256),
            &"a/".repeat(600),
        ] {
            assert!(StorageKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(StorageKey::parse("2026/03/07/report_x1.pdf").is_ok());
    }

    /// What Django's storage wrote stays a key as it is: old links name it so.
    #[test]
    fn parse_keeps_spaces_and_letters_of_existing_names() {
        for kept in [
            "a b.pdf",
            "é",
            "Grüße/März 2020.txt",
            "日本語.png",
            "a%2fb",
            "50% off.txt",
        ] {
            let key = StorageKey::parse(kept).unwrap();
            assert_eq!(key.as_str(), kept);
            assert!(!key.is_ascii_safe(), "{kept:?}");
        }
        assert!(StorageKey::parse("2026/a_b.pdf").unwrap().is_ascii_safe());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use std::path::{Component, Path};

        /// Key-like text: mostly the characters that matter to paths, now and then anything.
        fn key_like() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-z./\\\\\0%_-]{0,24}",
                proptest::collection::vec(
                    prop_oneof![
                        Just("..".to_owned()),
                        Just(".".to_owned()),
                        Just(String::new()),
                        Just(".tmp".to_owned()),
                        "[a-zA-Z0-9._-]{1,8}",
                    ],
                    1..6
                )
                .prop_map(|segments| segments.join("/")),
                "\\PC{0,30}",
            ]
        }

        /// Whether `key`, joined to a root, names a path below it.
        fn stays_below_the_root(key: &str) -> bool {
            Path::new(key)
                .components()
                .all(|c| matches!(c, Component::Normal(_)))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn no_accepted_key_leaves_the_root(value in key_like()) {
                if let Ok(key) = StorageKey::parse(&value) {
                    let key = key.as_str();
                    prop_assert!(stays_below_the_root(key), "{key:?}");
                    prop_assert!(!key.contains('\0') && !key.contains('\\'), "{key:?}");
                    prop_assert!(!key.starts_with('/'), "{key:?}");
                    prop_assert!(key.split('/').all(|s| !s.is_empty() && !s.starts_with('.')),
                        "{key:?}");
                    prop_assert!(key.len() <= MAX_KEY_BYTES);
                }
            }

            #[test]
            fn every_upload_gets_a_key_that_parse_accepts(
                upload_to in prop_oneof![
                    Just("%Y/%m/%d".to_owned()),
                    Just("users/{user}/%Y".to_owned()),
                    "[a-z%{}./\\\\ YmdUuser-]{0,30}",
                    "\\PC{0,40}",
                ],
                username in prop_oneof!["[a-zA-Z0-9@.+_-]{1,20}", "\\PC{0,20}"],
                name in prop_oneof![key_like(), any::<String>()],
                seconds in 0i64..4_102_444_800,
            ) {
                let now = DateTime::from_timestamp(seconds, 0).expect("a date");
                let key = StorageKey::for_upload(&upload_to, now, &username, &name);
                prop_assert_eq!(StorageKey::parse(key.as_str()), Ok(key.clone()));
                prop_assert!(key.is_ascii_safe(), "{key:?}");
                let fresh = key.with_unique_suffix();
                prop_assert!(fresh.is_ascii_safe(), "{fresh:?}");
                prop_assert_eq!(StorageKey::parse(fresh.as_str()), Ok(fresh.clone()));
            }
        }
    }
}
