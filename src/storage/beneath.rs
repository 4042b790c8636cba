//! Opening, creating, linking and removing entries *beneath* a root directory without
//! following a symlink at any step, so that nothing done through a `Root` can reach outside
//! it — not even while someone who can rename entries inside the root swaps a directory for
//! a symlink between our steps (README: "What the filesystem storage guarantees").
//!
//! Every operation starts from the root's open directory handle, never from a path string:
//! checking a path and then opening it again by name is exactly the race this module exists
//! to close. On Linux 5.6+ one `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` does the
//! walk in the kernel; elsewhere (older kernels, sandboxes that filter `openat2`) each
//! component is opened with `openat(O_NOFOLLOW)` from the previous one's handle. Both refuse
//! a symlink anywhere on the way, and the callers only pass relative paths without `.` or
//! `..` segments (a `StorageKey`), so neither can climb out.

use std::fs::File;
use std::io::{Error, ErrorKind};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{Access, AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// Directories made for keys are private to the app's user.
const DIR_MODE: u32 = 0o700;

/// An open root directory.
#[derive(Debug)]
pub struct Root {
    dir: OwnedFd,
    path: PathBuf,
    /// Whether the kernel has a working `openat2` (probed once at open).
    openat2: bool,
}

/// What the caller asked to open was a symlink, a directory, a device or the like: for a
/// storage, an object that does not exist.
fn not_a_regular_file() -> Error {
    Error::new(ErrorKind::NotFound, "not a regular file beneath the root")
}

/// A refused step (a symlink on the way, a component that is not a directory, a path that
/// would leave the root) reads as "not found": the caller must not learn more.
fn refusal_as_not_found(e: Errno) -> Error {
    match e {
        Errno::LOOP | Errno::NOTDIR | Errno::XDEV | Errno::NOENT => {
            Error::new(ErrorKind::NotFound, e)
        }
        other => other.into(),
    }
}

/// A symlink (or a path leaving the root) stands where the object's folder should be. The
/// object may well exist behind the real folder while it is swapped out: for a removal this
/// is not "already gone".
#[derive(Debug, thiserror::Error)]
#[error("a symlink stands in the object's path")]
pub struct SymlinkInPath;

/// What a folder path beneath the root is made of, looked at one component at a time.
enum Folder {
    /// Every component is a real folder.
    Present,
    /// A component does not exist, or is a file: nothing can be stored beneath it.
    Missing,
    /// A component is a symlink.
    Symlink,
}

fn split_parent(relative: &str) -> Result<(&str, &str), Error> {
    let (parent, name) = relative.rsplit_once('/').unwrap_or(("", relative));
    if name.is_empty() || name == "." || name == ".." {
        return Err(Error::new(ErrorKind::InvalidInput, "not a file name"));
    }
    Ok((parent, name))
}

/// Only relative paths of plain names: no leading `/`, no NUL, no empty, `.` or `..` part.
fn check_relative(relative: &str) -> Result<(), Error> {
    if relative.starts_with('/') || relative.as_bytes().contains(&0) {
        return Err(Error::new(ErrorKind::InvalidInput, "not a relative path"));
    }
    if relative
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "empty, . or .. segment",
        ));
    }
    Ok(())
}

impl Root {
    /// Opens `path` (which may itself be reached through symlinks: the operator chose it)
    /// as the root.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let dir = rustix::fs::open(
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let openat2 = rustix::fs::openat2(
            &dir,
            ".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        )
        .is_ok();
        Ok(Self {
            dir,
            path: path.to_owned(),
            openat2,
        })
    }

    /// The same root, walking component by component as on kernels without `openat2`.
    #[cfg(test)]
    pub fn without_openat2(mut self) -> Self {
        self.openat2 = false;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens `relative` beneath `from` with `flags`, no symlink followed anywhere.
    fn open_beneath(
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

    /// Opens a regular file for reading. The handle is checked after opening (`fstat`), so
    /// what the caller reads is exactly what was checked.
    pub fn open_file(&self, relative: &str) -> Result<File, Error> {
        check_relative(relative)?;
        // O_NONBLOCK: a FIFO put in a file's place must not hang the opening thread (it has
        // no effect on regular files, the only kind kept).
        let fd = self.open_beneath(
            self.dir.as_fd(),
            relative,
            OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        )?;
        let stat = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(not_a_regular_file());
        }
        Ok(File::from(fd))
    }

    /// Opens the directory `relative` (`""` is the root itself), creating missing
    /// directories on the way when `create` is set.
    pub fn open_dir(&self, relative: &str, create: bool) -> Result<OwnedFd, Error> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY;
        let root_itself = || {
            rustix::fs::openat(&self.dir, ".", flags | OFlags::CLOEXEC, Mode::empty())
                .map_err(Error::from)
        };
        if relative.is_empty() {
            return root_itself();
        }
        match self.open_beneath(self.dir.as_fd(), relative, flags, Mode::empty()) {
            Err(e) if create && e.kind() == ErrorKind::NotFound => {}
            other => return other,
        }
        // Make the missing ones, one level at a time, each from its parent's handle.
        let mut current = root_itself()?;
        for part in relative.split('/') {
            match rustix::fs::mkdirat(&current, part, Mode::from_raw_mode(DIR_MODE)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            current = self.open_beneath(current.as_fd(), part, flags, Mode::empty())?;
        }
        Ok(current)
    }

    /// Creates `name` in the directory `dir` (a handle from `open_dir`) exclusively, for
    /// writing, mode 0600.
    pub fn create_new_in(dir: BorrowedFd<'_>, name: &str) -> Result<File, Error> {
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        Ok(File::from(fd))
    }

    /// Gives the file `from_name` of the directory `from_dir` the second name `relative`
    /// beneath the root, creating folders as needed. Never replaces anything: an existing
    /// `relative` is `AlreadyExists`. (A hard link is atomic and no-replace on every local
    /// filesystem and on NFS, where `RENAME_NOREPLACE` is not.)
    pub fn link_into(
        &self,
        from_dir: BorrowedFd<'_>,
        from_name: &str,
        relative: &str,
    ) -> Result<(), Error> {
        check_relative(relative)?;
        let (parent, name) = split_parent(relative)?;
        let parent = self.open_dir(parent, true)?;
        rustix::fs::linkat(from_dir, from_name, &parent, name, AtFlags::empty())?;
        // The new name survives a power cut once its directory is on disk.
        rustix::fs::fsync(&parent)?;
        Ok(())
    }

    /// Removes the regular file `relative`: the parent is opened beneath the root and the
    /// name unlinked from that handle, so a swapped-in symlink can only make this fail,
    /// never remove something elsewhere.
    pub fn remove_file(&self, relative: &str) -> Result<(), Error> {
        check_relative(relative)?;
        let (parent, name) = split_parent(relative)?;
        let parent = match self.open_dir(parent, false) {
            Ok(fd) => fd,
            // The open refuses a symlink on the way as "not found"; for a removal, tell a
            // folder that is really missing from one swapped out for a symlink.
            Err(e) if e.kind() == ErrorKind::NotFound => match self.folder(parent) {
                Folder::Missing => return Err(e),
                Folder::Symlink => return Err(Error::other(SymlinkInPath)),
                // Swapped back in the meantime: one more try, then refuse.
                Folder::Present => self
                    .open_dir(parent, false)
                    .map_err(|_| Error::other(SymlinkInPath))?,
            },
            Err(e) => return Err(e),
        };
        let stat = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(refusal_as_not_found)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(not_a_regular_file());
        }
        rustix::fs::unlinkat(&parent, name, AtFlags::empty()).map_err(refusal_as_not_found)
    }

    /// Looks at each component of the folder path `relative` without following anything.
    fn folder(&self, relative: &str) -> Folder {
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

    /// Removes an empty directory `relative` (used to tidy the probe's folder).
    pub fn remove_empty_dir(&self, relative: &str) -> Result<(), Error> {
        check_relative(relative)?;
        let (parent, name) = split_parent(relative)?;
        let parent = self.open_dir(parent, false)?;
        rustix::fs::unlinkat(&parent, name, AtFlags::REMOVEDIR).map_err(refusal_as_not_found)
    }
}

/// The entries of the directory `dir` (`.` and `..` aside), each with whether it is a real
/// directory (a symlink to one is not). Names that are not UTF-8 are left out: we make none.
pub fn entries(dir: BorrowedFd<'_>) -> Result<Vec<(String, bool)>, Error> {
    let mut found = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        let stat = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
        found.push((name.to_owned(), is_dir));
    }
    Ok(found)
}

/// What the entry `name` of `dir` is, a symlink being itself; `None` when there is none.
pub fn kind_in(dir: BorrowedFd<'_>, name: &str) -> Result<Option<FileType>, Error> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) => Ok(Some(FileType::from_raw_mode(stat.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether entries can be made in the directory `dir`, asked of the kernel (permissions, a
/// read-only mount) so that finding out writes nothing.
pub fn is_writable(dir: BorrowedFd<'_>) -> Result<bool, Error> {
    match rustix::fs::accessat(
        dir,
        ".",
        Access::WRITE_OK | Access::EXEC_OK,
        AtFlags::empty(),
    ) {
        Ok(()) => Ok(true),
        Err(Errno::ACCESS | Errno::ROFS | Errno::PERM) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Opens the directory `name` inside `dir`, refusing a symlink.
pub fn open_subdir(dir: BorrowedFd<'_>, name: &str) -> Result<OwnedFd, Error> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(refusal_as_not_found)
}

/// Opens the file `name` inside `dir` for reading, refusing a symlink.
pub fn open_file_in(dir: BorrowedFd<'_>, name: &str) -> Result<File, Error> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(refusal_as_not_found)?;
    Ok(File::from(fd))
}

/// Removes the entry `name` of `dir` (an empty directory when `is_dir`); a symlink is
/// removed itself, never what it points to.
pub fn remove_in(dir: BorrowedFd<'_>, name: &str, is_dir: bool) -> Result<(), Error> {
    let flags = if is_dir {
        AtFlags::REMOVEDIR
    } else {
        AtFlags::empty()
    };
    rustix::fs::unlinkat(dir, name, flags).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::symlink;

    fn roots(dir: &Path) -> [Root; 2] {
        [
            Root::open(dir).unwrap(),
            Root::open(dir).unwrap().without_openat2(),
        ]
    }

    #[test]
    fn files_beneath_the_root_open_and_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/c.txt"), b"hello").unwrap();
        for root in roots(dir.path()) {
            let mut read = String::new();
            root.open_file("a/b/c.txt")
                .unwrap()
                .read_to_string(&mut read)
                .unwrap();
            assert_eq!(read, "hello");
        }
    }

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

    #[test]
    fn a_fifo_in_a_files_place_is_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.path().join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        for root in roots(dir.path()) {
            assert_eq!(
                root.open_file("fifo").unwrap_err().kind(),
                ErrorKind::NotFound
            );
        }
    }

    #[test]
    fn links_never_replace_and_make_their_folders() {
        let dir = tempfile::tempdir().unwrap();
        for (i, root) in roots(dir.path()).into_iter().enumerate() {
            let tmp = root.open_dir(&format!("tmp{i}"), true).unwrap();
            let name = format!("t{i}");
            std::io::Write::write_all(&mut Root::create_new_in(tmp.as_fd(), &name).unwrap(), b"x")
                .unwrap();
            let key = format!("y{i}/m/z.txt");
            root.link_into(tmp.as_fd(), &name, &key).unwrap();
            assert_eq!(std::fs::read(dir.path().join(&key)).unwrap(), b"x");
            let e = root.link_into(tmp.as_fd(), &name, &key).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AlreadyExists);
            root.remove_file(&key).unwrap();
            assert!(!dir.path().join(&key).exists());
        }
    }
}
