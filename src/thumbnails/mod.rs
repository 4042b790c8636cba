//! Private thumbnails (README: "Thumbnails"): for an uploaded JPEG, PNG, GIF or WebP (by its
//! sniffed type), two fixed sizes are made once, stored in the file's own storage next to its
//! object (`KEY.thumbs/small.jpg`, `KEY.thumbs/medium.jpg`), and served behind the file's own
//! access rule by the ordinary delivery path.
//!
//! - `size`: the two sizes and the keys of the derived objects (which the path view refuses);
//! - `render`: decoding an untrusted image within limits, off the async threads;
//! - `make`: reading the original, storing the derived objects and recording them in the row;
//!   removing them again.

mod budget;
mod make;
mod render;
mod size;

pub use make::{ThumbError, Thumbnailer, remove_derived};
pub use render::{RenderError, Rendered, render};
pub use size::{ThumbSize, UnknownSize, derived_key, is_derived, thumbnail_of};

/// The type every thumbnail is stored and served as.
pub const CONTENT_TYPE: &str = "image/jpeg";
