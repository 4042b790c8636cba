//! Uploads, whoever sends them (the admin form today; the CLI and a JSON API reuse it): a file
//! is streamed into a pending storage upload (`stream`), and an accepted one is stored under a
//! reserved key with its row (`store`), one after another for files sent together (`batch`); `replace` gives a stored file new
//! content under the same id; `remove` deletes one (object, then row); `reconcile` is the start-up clean-up of uploads a
//! crash cut short. The command line's `upload` and `move` use the same steps. Nothing here knows about HTTP: `error.rs` maps refusals to status codes.

mod batch;
mod hashing;
mod reconcile;
mod remove;
mod replace;
mod store;
mod stream;

pub use batch::{Batch, Outcome, Slot, store_batch, title_for};
pub(crate) use hashing::{HashError, Hasher};
pub(crate) use reconcile::is_the_uploaded_object;
pub use reconcile::reconcile_interrupted;
pub use remove::{ObjectState, RemoveError, remove_file};
pub use replace::{ReplaceError, ReplaceRequest, Replaced, replace_content};
pub use store::{
    Destination, StoreError, StoreRequest, StoredFile, store_accepted, store_accepted_then,
};
pub(crate) use store::{commit_reserved, release};
pub use stream::{ReceiveError, Received, receive, sniff};

/// Why a file was refused, in words for the person who uploaded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooLarge { limit: u64 },
    Type { found: String, allowed: Vec<String> },
    Empty,
}

impl Refusal {
    pub fn reason(&self) -> String {
        match self {
            Refusal::TooLarge { limit } => {
                format!("too large: the limit is {}", human_size(*limit))
            }
            Refusal::Type { found, allowed } => format!(
                "files of type {found} are not allowed (allowed: {})",
                allowed.join(", ")
            ),
            Refusal::Empty => "the file is empty".to_owned(),
        }
    }
}

/// Sizes for people, in the one format every page uses (`display::size`).
pub fn human_size(bytes: u64) -> String {
    crate::display::size(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1023), "1023 bytes");
        assert_eq!(human_size(1024), "1 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(100 * 1024 * 1024), "100 MiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5 GiB");
    }

    /// static/upload.js writes sizes as `display::size` does (the format every page uses):
    /// these are the cases it copies, a tie rounded to even and the unit chosen before
    /// rounding included.
    #[test]
    fn the_size_format_upload_js_copies() {
        let shown = crate::display::size;
        assert_eq!(shown(0), "0 bytes");
        assert_eq!(shown(1), "1 byte");
        assert_eq!(shown(1023), "1023 bytes");
        assert_eq!(shown(1024), "1 KiB");
        assert_eq!(shown(1280), "1.2 KiB");
        assert_eq!(shown(1792), "1.8 KiB");
        assert_eq!(shown(1536), "1.5 KiB");
        assert_eq!(shown(1024 * 1024 - 1), "1024 KiB");
        assert_eq!(shown(6 * 1024 * 1024), "6 MiB");
        assert_eq!(shown(5 * 1024 * 1024 * 1024), "5 GiB");
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(
            Refusal::TooLarge { limit: 1024 * 1024 }.reason(),
            "too large: the limit is 1 MiB"
        );
        let r = Refusal::Type {
            found: "text/html".into(),
            allowed: vec!["image/*".into()],
        };
        assert!(r.reason().contains("text/html"));
        assert!(r.reason().contains("image/*"));
    }
}
