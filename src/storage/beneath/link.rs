//! Giving a file a second name beneath the root, and removing names there.

use std::io::{Error, ErrorKind};
use std::os::fd::BorrowedFd;

use rustix::fs::{AtFlags, FileType};

use super::walk::Folder;
use super::{
    Root, SwappedFile, SymlinkInPath, check_relative, not_a_regular_file, refusal_as_not_found,
    split_parent,
};

impl Root {
    /// Gives the file `from_name` of the directory `from_dir` the second name `relative`
    /// beneath the root, creating folders as needed. Never replaces anything: an existing
    /// `relative` is `AlreadyExists`. (A hard link is atomic and no-replace on every local
    /// filesystem and on NFS, where `RENAME_NOREPLACE` is not.)
    ///
    /// `expected` is the file meant, held open by the caller: the link is made by name (no
    /// symlink followed), and if the name turns out to stand for another file (swapped in
    /// since the caller opened it), the new name is removed again and the link refused as
    /// `SwappedFile`. Held open, the file's inode cannot be reused in the meantime.
    pub fn link_into(
        &self,
        from_dir: BorrowedFd<'_>,
        from_name: &str,
        expected: BorrowedFd<'_>,
        relative: &str,
    ) -> Result<(), Error> {
        check_relative(relative)?;
        let (parent, name) = split_parent(relative)?;
        let parent = self.open_dir(parent, true)?;
        rustix::fs::linkat(from_dir, from_name, &parent, name, AtFlags::empty())?;
        let meant = rustix::fs::fstat(expected)?;
        let linked = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW)?;
        if (linked.st_dev, linked.st_ino) != (meant.st_dev, meant.st_ino) {
            rustix::fs::unlinkat(&parent, name, AtFlags::empty())?;
            return Err(Error::other(SwappedFile));
        }
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

    /// Removes an empty directory `relative` (the probe's folder, an emptied thumbnails folder).
    pub fn remove_empty_dir(&self, relative: &str) -> Result<(), Error> {
        check_relative(relative)?;
        let (parent, name) = split_parent(relative)?;
        let parent = self.open_dir(parent, false)?;
        rustix::fs::unlinkat(&parent, name, AtFlags::REMOVEDIR).map_err(refusal_as_not_found)
    }
}

#[cfg(test)]
mod tests {
    use super::super::roots;
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn links_never_replace_and_make_their_folders() {
        let dir = tempfile::tempdir().unwrap();
        for (i, root) in roots(dir.path()).into_iter().enumerate() {
            let tmp = root.open_dir(&format!("tmp{i}"), true).unwrap();
            let name = format!("t{i}");
            let mut file = Root::create_new_in(tmp.as_fd(), &name).unwrap();
            std::io::Write::write_all(&mut file, b"x").unwrap();
            let key = format!("y{i}/m/z.txt");
            root.link_into(tmp.as_fd(), &name, file.as_fd(), &key)
                .unwrap();
            assert_eq!(std::fs::read(dir.path().join(&key)).unwrap(), b"x");
            let e = root
                .link_into(tmp.as_fd(), &name, file.as_fd(), &key)
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::AlreadyExists);
            root.remove_file(&key).unwrap();
            assert!(!dir.path().join(&key).exists());
        }
    }

    #[test]
    fn a_name_that_now_stands_for_another_file_is_not_linked() {
        let dir = tempfile::tempdir().unwrap();
        for (i, root) in roots(dir.path()).into_iter().enumerate() {
            let tmp = root.open_dir(&format!("tmp{i}"), true).unwrap();
            let name = format!("t{i}");
            let meant = Root::create_new_in(tmp.as_fd(), &name).unwrap();
            // Someone swaps another file in under the name.
            std::fs::remove_file(dir.path().join(format!("tmp{i}/{name}"))).unwrap();
            std::fs::write(dir.path().join(format!("tmp{i}/{name}")), b"other").unwrap();
            let key = format!("s{i}.txt");
            let e = root
                .link_into(tmp.as_fd(), &name, meant.as_fd(), &key)
                .unwrap_err();
            assert!(
                e.get_ref().is_some_and(|inner| inner.is::<SwappedFile>()),
                "{e}"
            );
            assert!(!dir.path().join(&key).exists(), "the other file was linked");
        }
    }
}
