//! Work on the entries of one directory already open (a handle from `Root::open_dir` or
//! `open_subdir`): a single name at a time, so there is no path to walk and nothing to follow.

use std::fs::File;
use std::io::Error;
use std::os::fd::{BorrowedFd, OwnedFd};

use rustix::fs::{Access, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use super::refusal_as_not_found;

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
