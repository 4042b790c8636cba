//! Turning an untrusted image into thumbnails without letting it exhaust the server: the
//! header is read first and an image claiming more than `max_pixels` is refused before a
//! pixel is decoded; the decoder runs with `image`'s own limits on width, height and
//! allocation besides. The result is encoded fresh as JPEG, so nothing of the original's
//! metadata (EXIF, GPS, comments) survives; its EXIF orientation is applied first.

use std::io::{BufRead, Seek};

use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use super::ThumbSize;

/// No side longer than this is decoded, whatever `max_pixels` allows.
const MAX_SIDE: u32 = 65_535;
/// Bytes per pixel the decoder may use at most (16-bit RGBA), for its allocation limit.
const MAX_BYTES_PER_PIXEL: u64 = 8;
const JPEG_QUALITY: u8 = 82;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("not a JPEG, PNG, GIF or WebP image")]
    Unsupported,
    #[error("{width}×{height} is more than the {max} pixels allowed")]
    TooLarge { width: u32, height: u32, max: u64 },
    #[error("the image cannot be decoded: {0}")]
    Undecodable(#[from] image::ImageError),
    #[error("reading the image failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The original's size (as displayed, orientation applied) and the encoded thumbnails.
#[derive(Debug)]
pub struct Rendered {
    pub width: u32,
    pub height: u32,
    /// One JPEG per size, in `ThumbSize::ALL`'s order.
    pub thumbnails: Vec<(ThumbSize, Vec<u8>)>,
}

/// Decodes `source` and makes every size. Blocking: run it off the async threads.
pub fn render(source: impl BufRead + Seek, max_pixels: u64) -> Result<Rendered, RenderError> {
    let mut reader = ImageReader::new(source).with_guessed_format()?;
    if !matches!(
        reader.format(),
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP)
    ) {
        return Err(RenderError::Unsupported);
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(max_pixels.saturating_mul(MAX_BYTES_PER_PIXEL));
    reader.limits(limits);
    // Only the header has been read here.
    let mut decoder = reader.into_decoder()?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > max_pixels {
        return Err(RenderError::TooLarge {
            width,
            height,
            max: max_pixels,
        });
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder)?;
    // Scaled first, turned after: the boxes are square, so the result is the same, and the
    // turn copies a thumbnail rather than the whole photo.
    let medium = fit(image, ThumbSize::Medium.edge());
    let small = fit(medium.clone(), ThumbSize::Small.edge());
    let mut thumbnails = Vec::with_capacity(2);
    for (size, mut thumb) in [(ThumbSize::Small, small), (ThumbSize::Medium, medium)] {
        thumb.apply_orientation(orientation);
        thumbnails.push((size, encode(&thumb)?));
    }
    let swapped = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (width, height) = if swapped {
        (height, width)
    } else {
        (width, height)
    };
    Ok(Rendered {
        width,
        height,
        thumbnails,
    })
}

/// Scaled down to fit in `edge`×`edge`, aspect kept; never scaled up.
fn fit(image: DynamicImage, edge: u32) -> DynamicImage {
    if image.width() <= edge && image.height() <= edge {
        image
    } else {
        image.thumbnail(edge, edge)
    }
}

/// A fresh JPEG of the pixels alone; transparency is laid on white.
fn encode(image: &DynamicImage) -> Result<Vec<u8>, RenderError> {
    let rgba = image.to_rgba8();
    let rgb = RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white =
            |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    });
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).encode_image(&rgb)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = RgbImage::from_pixel(width, height, image::Rgb([200, 10, 10]));
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, ImageFormat::Png).unwrap();
        out.into_inner()
    }

    fn decoded(jpeg: &[u8]) -> DynamicImage {
        image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg).unwrap()
    }

    #[test]
    fn sizes_fit_their_box_keep_the_aspect_and_never_grow() {
        let rendered = render(Cursor::new(png(1000, 500)), 50_000_000).unwrap();
        assert_eq!((rendered.width, rendered.height), (1000, 500));
        let small = decoded(&rendered.thumbnails[0].1);
        let medium = decoded(&rendered.thumbnails[1].1);
        assert_eq!((small.width(), small.height()), (160, 80));
        assert_eq!((medium.width(), medium.height()), (640, 320));
        let tiny = render(Cursor::new(png(40, 30)), 50_000_000).unwrap();
        for (_, jpeg) in &tiny.thumbnails {
            let thumb = decoded(jpeg);
            assert_eq!((thumb.width(), thumb.height()), (40, 30));
        }
    }

    #[test]
    fn an_image_over_the_pixel_limit_is_refused_from_its_header() {
        let e = render(Cursor::new(png(100, 100)), 9_999).unwrap_err();
        assert!(matches!(e, RenderError::TooLarge { width: 100, .. }), "{e}");
    }

    #[test]
    fn truncated_and_foreign_bytes_are_refused() {
        let mut cut = png(300, 300);
        cut.truncate(cut.len() / 2);
        assert!(render(Cursor::new(cut), 50_000_000).is_err());
        let e = render(Cursor::new(b"%PDF-1.7 not an image".to_vec()), 50_000_000).unwrap_err();
        assert!(matches!(e, RenderError::Unsupported), "{e}");
    }
}
