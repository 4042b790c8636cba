//! `[thumbnails]`: the previews made of uploaded images (README: "Thumbnails").

use super::ConfigError;
use super::raw::RawThumbnails;

/// The largest image (width × height) decoded by default: a 50-megapixel photo.
pub const DEFAULT_MAX_PIXELS: u64 = 50_000_000;
/// No setting may allow more: the decoder's own memory limit is sized from it.
const MAX_MAX_PIXELS: u64 = 500_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThumbnailSettings {
    /// `false`: no thumbnails are made (those already stored are still served).
    pub enabled: bool,
    /// Images whose header claims more pixels than this are never decoded.
    pub max_pixels: u64,
}

impl Default for ThumbnailSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }
}

impl RawThumbnails {
    pub(super) fn validate(self) -> Result<ThumbnailSettings, ConfigError> {
        let max_pixels = self.max_pixels.unwrap_or(DEFAULT_MAX_PIXELS);
        if max_pixels == 0 || max_pixels > MAX_MAX_PIXELS {
            return Err(ConfigError::new(
                "thumbnails.max_pixels",
                format!("between 1 and {MAX_MAX_PIXELS}"),
            ));
        }
        Ok(ThumbnailSettings {
            enabled: self.enabled.unwrap_or(true),
            max_pixels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_limits() {
        let default = RawThumbnails::default().validate().unwrap();
        assert_eq!(default, ThumbnailSettings::default());
        let off = RawThumbnails {
            enabled: Some(false),
            max_pixels: Some(1000),
        };
        assert_eq!(
            off.validate().unwrap(),
            ThumbnailSettings {
                enabled: false,
                max_pixels: 1000
            }
        );
        for bad in [0, MAX_MAX_PIXELS + 1] {
            let raw = RawThumbnails {
                enabled: None,
                max_pixels: Some(bad),
            };
            let e = raw.validate().unwrap_err().to_string();
            assert!(e.contains("thumbnails.max_pixels"), "{e}");
        }
    }
}
