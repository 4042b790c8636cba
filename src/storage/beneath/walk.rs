//! The walk from a directory handle down a relative path, one `openat2` or one `openat` a
//! component, and the slower look at a folder path that tells a removal why it was refused.

use std::io::Error;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use super::{Root, check_relative, refusal_as_not_found};

/// What a folder path beneath the root is made of, looked at one component at a time.
pub(super) enum Folder {
    /// Every component is a real folder.
    Present,
    /// A component does not exist, or is a file: nothing can be stored beneath it.
    Missing,
    /// A component is a symlink.
    Symlink,
}

impl Root {
    /// Opens `relative` beneath `from` with `flags`, no symlink followed anywhere.
    pub(super) fn open_beneath(
        &self,
        from: BorrowedFd<'_>,
        relative: &str,
        flags: OFlags,
        mode: Mode,
    ) -> Result<OwnedFd, Error> {
        check_relative(relative)?;
        let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        if self.openat2 {
            return rustix::fs::openat2(
                from,
                relative,
                flags,
                mode,
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            )
            .map_err(refusal_as_not_found);
        }
        let mut parts: Vec<&str> = relative.split('/').collect();
        let last = parts.pop().unwrap_or_default();
        let mut current: Option<OwnedFd> = None;
        for part in parts {
            let at = current.as_ref().map_or(from, |fd| fd.as_fd());
            let next = rustix::fs::openat(
                at,
                part,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(refusal_as_not_found)?;
            current = Some(next);
        }
        let at = current.as_ref().map_or(from, |fd| fd.as_fd());
        rustix::fs::openat(at, last, flags, mode).map_err(refusal_as_not_found)
    }

    /// Looks at each component of the folder path `relative` without following anything.
    pub(super) fn folder(&self, relative: &str) -> Folder {
        let mut current: Option<OwnedFd> = None;
        for part in relative.split('/') {
            let at = current.as_ref().map_or(self.dir.as_fd(), |fd| fd.as_fd());
            let kind = match rustix::fs::statat(at, part, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => FileType::from_raw_mode(stat.st_mode),
                Err(_) => return Folder::Missing,
            };
            match kind {
                FileType::Symlink => return Folder::Symlink,
                FileType::Directory => {}
                _ => return Folder::Missing,
            }
            match rustix::fs::openat(
                at,
                part,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) {
                Ok(fd) => current = Some(fd),
                // It changed between the two looks: somebody is swapping.
                Err(_) => return Folder::Symlink,
            }
        }
        Folder::Present
    }
}

#[cfg(test)]
mod tests {
    use super::super::{SymlinkInPath, roots};
    use std::io::ErrorKind;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_symlink_anywhere_on_the_way_is_refused_as_not_found() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(outside.path().join("d")).unwrap();
        std::fs::write(outside.path().join("d/secret"), b"secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        std::fs::write(dir.path().join("real/inside"), b"inside").unwrap();
        symlink(outside.path().join("d"), dir.path().join("out")).unwrap();
        symlink(
            outside.path().join("d/secret"),
            dir.path().join("file-link"),
        )
        .unwrap();
        // Even a symlink that stays inside the root is refused: no step follows one.
        symlink(dir.path().join("real"), dir.path().join("in")).unwrap();
        for root in roots(dir.path()) {
            for key in ["out/secret", "file-link", "in/inside", "real"] {
                let e = root.open_file(key).unwrap_err();
                assert_eq!(e.kind(), ErrorKind::NotFound, "{key}: {e}");
            }
            for key in ["../x", "/etc/passwd", "a/./b", "", "a//b"] {
                assert!(root.open_file(key).is_err(), "{key}");
            }
            // A symlinked folder is not proof that the object is gone (it may be behind
            // the real folder, swapped out for a moment): refused as such, not "not found".
            let e = root.remove_file("out/secret").unwrap_err();
            assert!(
                e.get_ref().is_some_and(|inner| inner.is::<SymlinkInPath>()),
                "{e:?}"
            );
            assert_eq!(
                root.remove_file("file-link").unwrap_err().kind(),
                ErrorKind::NotFound
            );
            // A folder that is really missing, or a file, is plain "not found".
            for key in ["missing/x", "real/inside/x", "in/inside"] {
                let e = root.remove_file(key).unwrap_err();
                let symlinked = e.get_ref().is_some_and(|inner| inner.is::<SymlinkInPath>());
                assert_eq!(symlinked, key == "in/inside", "{key}: {e:?}");
                if !symlinked {
                    assert_eq!(e.kind(), ErrorKind::NotFound, "{key}");
                }
            }
            assert!(dir.path().join("real/inside").exists());
            assert!(outside.path().join("d/secret").exists());
            assert!(dir.path().join("file-link").exists());
            assert!(root.open_dir("out/new", true).is_err());
            assert!(!outside.path().join("d/new").exists());
        }
    }
}
