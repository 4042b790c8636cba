//! The rows every request reads to decide access, kept in process so that a download that
//! finds them needs no trip to the blocking pool: whether a session was ended, a user by id,
//! a file with whether a given user is one of its readers, a share link by its token's
//! digest (with its file and whether its creator is active). Exact, not timed: an entry is used
//! only while the `freshness` version it was read at is still current, and every change moves
//! the version on (see `freshness.rs` for how, per backend).
//!
//! One cache per worker thread (no locks; SQLite's `data_version` is per connection, and each
//! thread has its own), and per database (tests run many instances in one process).

use std::cell::RefCell;
use std::rc::Rc;

use super::freshness::{Freshness, Version};
use super::models::file::FileRow;
use super::models::share_link::OpenedLink;
use super::models::user::User;
use crate::domain::{FileId, UserId};

/// Past this many entries a thread's cache starts again empty: a bound on memory (a few MiB
/// at most) without the bookkeeping of an LRU.
const MAX_ENTRIES: usize = 4096;

/// foldhash, seeded per process: these maps are looked up several times per download, where
/// SipHash cost ~5% of a small one's CPU; the seed and `MAX_ENTRIES` keep keys a client
/// chooses (file ids) from being made to collide at will.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
struct Entries {
    version: Option<Version>,
    ended: HashMap<String, bool>,
    users: HashMap<UserId, Option<Rc<User>>>,
    /// By file, then by reader: a lookup needs no owned key.
    readable: HashMap<FileId, HashMap<UserId, Option<Readable>>>,
    /// Entries in `readable`, all files together.
    readers: usize,
    /// By the digest of a share link's token. A link's download count changes without
    /// moving the version (unlimited links' counts are written in batches): what is cached is
    /// only ever used to refuse early, the count is decided by the database.
    links: HashMap<String, Option<Rc<OpenedLink>>>,
}

thread_local! {
    static CACHES: RefCell<HashMap<u64, Entries>> = RefCell::new(HashMap::default());
}

/// What one request needs to know about its session and user, read at `version`.
/// A file row with whether the user is one of its readers. Shared: a cache hit hands out
/// the entry itself, not a copy of its strings.
pub type Readable = Rc<(FileRow, bool)>;

#[derive(Debug, Clone)]
pub struct SessionReads {
    pub ended: bool,
    pub user: Option<Rc<User>>,
}

pub struct ReadCache<'a> {
    freshness: &'a Freshness,
}

impl<'a> ReadCache<'a> {
    pub(super) fn new(freshness: &'a Freshness) -> Self {
        Self { freshness }
    }

    /// The version to read at, or `None`: do not use the cache at all.
    pub fn version(&self) -> Option<Version> {
        self.freshness.current()
    }

    fn with<T>(&self, version: Version, f: impl FnOnce(&mut Entries) -> T) -> T {
        CACHES.with(|caches| {
            let mut caches = caches.borrow_mut();
            let entries = caches.entry(self.freshness.id()).or_default();
            if entries.version != Some(version) {
                *entries = Entries {
                    version: Some(version),
                    ..Entries::default()
                };
            }
            f(entries)
        })
    }

    pub fn session(&self, version: Version, sid: &str, user: &UserId) -> Option<SessionReads> {
        self.with(version, |e| {
            Some(SessionReads {
                ended: *e.ended.get(sid)?,
                user: e.users.get(user)?.clone(),
            })
        })
    }

    pub fn readable(
        &self,
        version: Version,
        file: &FileId,
        user: &UserId,
    ) -> Option<Option<Readable>> {
        self.with(version, |e| e.readable.get(file)?.get(user).cloned())
    }

    pub fn link(&self, version: Version, digest: &str) -> Option<Option<Rc<OpenedLink>>> {
        self.with(version, |e| e.links.get(digest).cloned())
    }

    /// Keeps a link read at `version`, as `keep` keeps the rest.
    pub fn keep_link(&self, version: Version, digest: &str, found: &Option<Rc<OpenedLink>>) {
        if self.version() != Some(version) {
            return;
        }
        self.with(version, |e| {
            if e.ended.len() + e.users.len() + e.readers + e.links.len() >= MAX_ENTRIES {
                *e = Entries {
                    version: Some(version),
                    ..Entries::default()
                };
            }
            e.links.insert(digest.to_owned(), found.clone());
        });
    }

    /// Keeps what was read at `version`, if that is still the current version (a change may
    /// have come while the database was read).
    pub fn keep(
        &self,
        version: Version,
        sid: &str,
        user_id: &UserId,
        session: &SessionReads,
        readable: Option<(&FileId, &Option<Readable>)>,
    ) {
        if self.version() != Some(version) {
            return;
        }
        self.with(version, |e| {
            if e.ended.len() + e.users.len() + e.readers + e.links.len() >= MAX_ENTRIES {
                *e = Entries {
                    version: Some(version),
                    ..Entries::default()
                };
            }
            e.ended.insert(sid.to_owned(), session.ended);
            e.users.insert(user_id.clone(), session.user.clone());
            if let Some((file, found)) = readable {
                let readers = e.readable.entry(file.clone()).or_default();
                if readers.insert(user_id.clone(), found.clone()).is_none() {
                    e.readers += 1;
                }
            }
        });
    }
}
