//! Opening files and folders beneath the root, and creating them.

use std::fs::File;
use std::io::{Error, ErrorKind};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use super::{Root, check_relative, not_a_regular_file};

/// Directories made for keys are private to the app's user.
const DIR_MODE: u32 = 0o700;

impl Root {
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
}

#[cfg(test)]
mod tests {
    use super::super::roots;
    use super::*;
    use std::io::Read;

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
}
