//! The two thumbnail sizes and where their objects live.

use crate::domain::DERIVED_FOLDER_SUFFIX as FOLDER_SUFFIX;
use crate::domain::StorageKey;

// The folder of the derived objects is `KEY.thumbs/`. `StorageKey::for_upload` never makes a
// folder ending in `.thumbs` (a `{user}` or an `upload_to` folder so named is renamed), so a
// key with an earlier segment ending in it is a derived object, never an upload.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThumbSize {
    /// Fits in 160×160: lists and the detail page.
    Small,
    /// Fits in 640×640: the detail page's preview.
    Medium,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown thumbnail size {0:?}: small or medium")]
pub struct UnknownSize(pub String);

impl ThumbSize {
    pub const ALL: [ThumbSize; 2] = [ThumbSize::Small, ThumbSize::Medium];

    /// `?size=`: absent is `small`.
    pub fn parse(value: Option<&str>) -> Result<Self, UnknownSize> {
        match value {
            None | Some("small") => Ok(Self::Small),
            Some("medium") => Ok(Self::Medium),
            Some(other) => Err(UnknownSize(other.chars().take(64).collect())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Medium => "medium",
        }
    }

    /// The box the thumbnail fits in (square, so an orientation applied after scaling gives
    /// the same size as one applied before).
    pub fn edge(self) -> u32 {
        match self {
            Self::Small => 160,
            Self::Medium => 640,
        }
    }
}

/// The key of `original`'s thumbnail of `size`; `None` when the original's key is too long
/// to have one (the file then gets none).
pub fn derived_key(original: &StorageKey, size: ThumbSize) -> Option<StorageKey> {
    StorageKey::parse(&format!(
        "{}{FOLDER_SUFFIX}/{}.jpg",
        original.as_str(),
        size.as_str()
    ))
    .ok()
}

/// The folder `original`'s derived objects are in.
pub fn derived_folder(original: &StorageKey) -> Option<StorageKey> {
    StorageKey::parse(&format!("{}{FOLDER_SUFFIX}", original.as_str())).ok()
}

/// Whether `key` names a derived object rather than an uploaded file.
pub fn is_derived(key: &StorageKey) -> bool {
    let mut segments: Vec<&str> = key.as_str().split('/').collect();
    segments.pop();
    segments.iter().any(|s| s.ends_with(FOLDER_SUFFIX))
}

/// The original a derived key belongs to.
pub fn original_of(key: &StorageKey) -> Option<StorageKey> {
    let (original, _) = key.as_str().rsplit_once(&format!("{FOLDER_SUFFIX}/"))?;
    StorageKey::parse(original).ok()
}

/// The original whose thumbnail of one of the sizes the app makes `key` is; `None` for any
/// other key (an upload, or something else in a thumbnails folder).
pub fn thumbnail_of(key: &StorageKey) -> Option<StorageKey> {
    original_of(key).filter(|original| {
        ThumbSize::ALL
            .iter()
            .any(|&size| derived_key(original, size).as_ref() == Some(key))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_strictly() {
        assert_eq!(ThumbSize::parse(None), Ok(ThumbSize::Small));
        assert_eq!(ThumbSize::parse(Some("small")), Ok(ThumbSize::Small));
        assert_eq!(ThumbSize::parse(Some("medium")), Ok(ThumbSize::Medium));
        for bad in ["", "large", "Small", "160"] {
            assert!(ThumbSize::parse(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn derived_keys_sit_next_to_the_original_and_are_known_as_derived() {
        let original = StorageKey::parse("uploads/2026/photo.jpg").unwrap();
        let small = derived_key(&original, ThumbSize::Small).unwrap();
        assert_eq!(small.as_str(), "uploads/2026/photo.jpg.thumbs/small.jpg");
        assert!(is_derived(&small));
        assert!(is_derived(
            &derived_key(&original, ThumbSize::Medium).unwrap()
        ));
        assert!(!is_derived(&original));
        // An upload named like the folder is still a file of its own.
        assert!(!is_derived(&StorageKey::parse("uploads/x.thumbs").unwrap()));
        let segment = "a".repeat(250);
        let longest = StorageKey::parse(&format!(
            "{segment}/{segment}/{segment}/{}",
            "b".repeat(255)
        ))
        .unwrap();
        assert!(derived_key(&longest, ThumbSize::Small).is_none());
    }
}
