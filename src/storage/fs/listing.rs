//! Listing a filesystem storage's objects (`Storage::list`): a walk from directory handles
//! opened beneath the root without following a symlink, so the walk never leaves the root.
//! The temp area (`.tmp/` at the top) is not listed; a symlink, a device, a name that is not
//! UTF-8 or that no `StorageKey` accepts is listed as unusable with the reason.

use std::os::fd::{AsFd, BorrowedFd};

use rustix::fs::{AtFlags, FileType};

use super::TMP_DIR;
use crate::storage::beneath::{self, Root};
use crate::storage::{Listed, StorageError, StorageKey};

/// Folders deeper than this are reported, not walked (a loop of bind mounts, say).
const MAX_DEPTH: usize = 64;

pub(super) fn list(root: &Root, under: &str) -> Result<Vec<Listed>, StorageError> {
    let start = root.open_dir(under, false)?;
    let mut found = Vec::new();
    walk(start.as_fd(), under, 0, &mut found)?;
    found.sort_by(|a, b| name_of(a).cmp(name_of(b)));
    Ok(found)
}

fn name_of(entry: &Listed) -> &str {
    match entry {
        Listed::Object { key, .. } => key.as_str(),
        Listed::Unusable { name, .. } => name,
    }
}

fn joined(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_owned()
    } else {
        format!("{folder}/{name}")
    }
}

fn unusable(found: &mut Vec<Listed>, name: String, reason: &str) {
    found.push(Listed::Unusable {
        name,
        reason: reason.to_owned(),
    });
}

fn walk(
    dir: BorrowedFd<'_>,
    folder: &str,
    depth: usize,
    found: &mut Vec<Listed>,
) -> Result<(), StorageError> {
    for entry in rustix::fs::Dir::read_from(dir).map_err(std::io::Error::from)? {
        let entry = entry.map_err(std::io::Error::from)?;
        let raw = entry.file_name().to_bytes();
        if raw == b"." || raw == b".." {
            continue;
        }
        let Ok(name) = std::str::from_utf8(raw) else {
            let shown = joined(folder, &String::from_utf8_lossy(raw));
            unusable(found, shown, "the name is not UTF-8");
            continue;
        };
        if folder.is_empty() && name == TMP_DIR {
            continue;
        }
        let path = joined(folder, name);
        let stat = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            // Gone since the folder was read.
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(std::io::Error::from(e).into()),
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory if depth >= MAX_DEPTH => {
                unusable(found, path, "folders nested too deep")
            }
            FileType::Directory => match key_problem(&path) {
                Some(reason) => unusable(found, path, &reason),
                None => {
                    let sub = beneath::open_subdir(dir, name)?;
                    walk(sub.as_fd(), &path, depth + 1, found)?;
                }
            },
            FileType::RegularFile => match StorageKey::parse(&path) {
                Ok(key) => found.push(Listed::Object {
                    key,
                    size: u64::try_from(stat.st_size).unwrap_or(0),
                }),
                Err(e) => unusable(found, path, &e.to_string()),
            },
            FileType::Symlink => unusable(
                found,
                path,
                "a symlink (not followed: it could lead out of the root)",
            ),
            _ => unusable(found, path, "not a regular file"),
        }
    }
    Ok(())
}

/// Why a folder's path cannot be part of a key, if it cannot.
fn key_problem(path: &str) -> Option<String> {
    StorageKey::parse(&format!("{path}/x"))
        .err()
        .map(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::FilesystemStorage;
    use crate::storage::{Listed, Storage};

    #[tokio::test]
    async fn objects_are_listed_and_what_no_key_can_name_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let storage = FilesystemStorage::open(dir.path()).unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("a/Grüße")).unwrap();
        std::fs::write(root.join("a/Grüße/März 2020.txt"), b"hello").unwrap();
        std::fs::write(root.join("top.txt"), b"x").unwrap();
        std::fs::write(root.join("bad\nname.txt"), b"x").unwrap();
        std::fs::write(root.join(".hidden"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link.txt")).unwrap();
        let listed = storage.list("").await.unwrap();
        let objects: Vec<(String, u64)> = listed
            .iter()
            .filter_map(|l| match l {
                Listed::Object { key, size } => Some((key.as_str().to_owned(), *size)),
                _ => None,
            })
            .collect();
        assert_eq!(
            objects,
            vec![
                ("a/Grüße/März 2020.txt".to_owned(), 5),
                ("top.txt".to_owned(), 1)
            ]
        );
        let refused: Vec<&str> = listed
            .iter()
            .filter_map(|l| match l {
                Listed::Unusable { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(refused, vec![".hidden", "bad\nname.txt", "link.txt"]);
        let under = storage.list("a").await.unwrap();
        assert_eq!(under.len(), 1);
    }
}
