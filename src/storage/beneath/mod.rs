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
//!
//! This file holds the `Root` and the checks every operation shares. `walk.rs` is the walk
//! itself (both kinds) and the look at a folder path a removal needs, `open.rs` opens and
//! creates files and folders, `link.rs` links and removes them, and `dir.rs` works on the
//! entries of one directory already open.

mod dir;
mod link;
mod open;
mod walk;

use std::io::{Error, ErrorKind};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

pub use dir::{entries, is_writable, kind_in, open_file_in, open_subdir, remove_in};

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

/// The name of a file to be linked stands for another file than the one meant: someone
/// replaced it. Nothing was linked.
#[derive(Debug, thiserror::Error)]
#[error("the file to be linked was replaced by another")]
pub struct SwappedFile;

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
}

/// The tests of every file here run against both walks.
#[cfg(test)]
fn roots(dir: &Path) -> [Root; 2] {
    [
        Root::open(dir).unwrap(),
        Root::open(dir).unwrap().without_openat2(),
    ]
}
