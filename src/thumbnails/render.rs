//! Turning an untrusted image into thumbnails without letting it exhaust the server: the
//! header is read first, with little memory allowed for what comes before the pixels (a
//! tiny PNG can carry a profile that inflates to gigabytes); an image claiming more than
//! `max_pixels`, or needing more memory to decode than `max_pixels` × 8 bytes, is refused
//! before a pixel is decoded, and what it needs is taken from the process's decoding budget
//! first, so images decoded at once never need more than that together. The result is
//! encoded fresh as JPEG, so nothing of the original's metadata (EXIF, GPS, comments)
//! survives; its EXIF orientation is applied first.

use std::io::{BufRead, Seek, SeekFrom};

use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use super::ThumbSize;
use super::budget::MemoryBudget;

/// No side longer than this is decoded, whatever `max_pixels` allows.
const MAX_SIDE: u32 = 65_535;
/// Bytes per allowed pixel an image may need to be decoded (16-bit RGBA): with the default
/// `max_pixels`, 400 MB; also the budget of all decodes at once.
pub const MAX_BYTES_PER_PIXEL: u64 = 8;
/// What the decoder may allocate while it reads the header and the chunks before the
/// pixels (profiles, text, EXIF): real ones are a few hundred KiB at most.
const HEADER_ALLOC: u64 = 16 << 20;
const JPEG_QUALITY: u8 = 82;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("not a JPEG, PNG, GIF or WebP image")]
    Unsupported,
    #[error("{width}×{height} is more than the {max} pixels allowed")]
    TooLarge { width: u32, height: u32, max: u64 },
    #[error("decoding it would take about {needed} MB, more than the {max} MB allowed")]
    TooMuchMemory { needed: u64, max: u64 },
    #[error("its JPEG frame header is missing or disagrees with what the decoder reads")]
    NoFrame,
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

/// Decodes `source` and makes every size, taking the memory it needs from `budget` first.
/// Blocking: run it off the async threads.
pub fn render(
    mut source: impl BufRead + Seek,
    max_pixels: u64,
    budget: &MemoryBudget,
) -> Result<Rendered, RenderError> {
    let length = source.seek(SeekFrom::End(0))?;
    source.rewind()?;
    let mut reader = ImageReader::new(source).with_guessed_format()?;
    let format = reader.format();
    if !matches!(
        format,
        Some(ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP)
    ) {
        return Err(RenderError::Unsupported);
    }
    let most = max_pixels.saturating_mul(MAX_BYTES_PER_PIXEL);
    let within = |width: u32, height: u32, needed: u64| {
        let pixels = u64::from(width) * u64::from(height);
        if pixels > max_pixels {
            Err(RenderError::TooLarge {
                width,
                height,
                max: max_pixels,
            })
        } else if needed > most {
            Err(RenderError::TooMuchMemory {
                needed: needed.div_ceil(1_000_000),
                max: most / 1_000_000,
            })
        } else {
            Ok(needed)
        }
    };
    // The JPEG decoder reads the whole file before it looks at the header, so a JPEG is
    // reckoned from its frame header, read here, and its memory taken before that.
    let mut taken = None;
    let mut frame = None;
    if format == Some(ImageFormat::Jpeg) {
        let copies = length.saturating_mul(JPEG_FILE_COPIES);
        if copies > most {
            return Err(RenderError::TooMuchMemory {
                needed: copies.div_ceil(1_000_000),
                max: most / 1_000_000,
            });
        }
        // What the header parse may keep (the segments, and a joined copy of extended XMP) is
        // taken first and given back before the whole is taken: never holding one part while
        // waiting for another, two decodes cannot wait for each other.
        let read = {
            let _reading = budget.take(length.saturating_mul(2));
            let mut source = reader.into_inner();
            source.rewind()?;
            let found = jpeg_frame(&mut source);
            source.rewind()?;
            reader = ImageReader::with_format(source, ImageFormat::Jpeg);
            found.ok_or(RenderError::NoFrame)?
        };
        let needed = within(read.width, read.height, jpeg_memory(read, length))?;
        taken = Some((needed, budget.take(needed)));
        frame = Some(read);
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(HEADER_ALLOC);
    reader.limits(limits.clone());
    // Only the header has been read here (and the whole file, for a JPEG).
    let mut decoder = reader.into_decoder()?;
    let (width, height) = decoder.dimensions();
    let needed = match (&taken, frame) {
        (Some((needed, _)), Some(frame)) => {
            if (frame.width, frame.height) != (width, height) {
                // A second frame header, or one the decoder reads otherwise.
                return Err(RenderError::NoFrame);
            }
            *needed
        }
        _ => {
            let pixels = u64::from(width) * u64::from(height);
            let needed = within(
                width,
                height,
                decoding_memory(format, pixels, decoder.total_bytes(), length),
            )?;
            taken = Some((needed, budget.take(needed)));
            needed
        }
    };
    limits.max_alloc = Some(needed);
    decoder.set_limits(limits)?;
    // Held until the decoded image is dropped at the end of this function.
    let _memory = taken;
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

/// What decoding a PNG, GIF or WebP takes at its peak, besides the thumbnails: the decoded
/// image; for a GIF a frame buffer of its own; for a WebP the canvas and frame buffers of an
/// animation, and its compressed data twice (read whole, then unpacked). A tenth more for
/// the decoders' own buffers.
fn decoding_memory(format: Option<ImageFormat>, pixels: u64, decoded: u64, length: u64) -> u64 {
    let extra = match format {
        Some(ImageFormat::Gif) => pixels.saturating_mul(4),
        Some(ImageFormat::WebP) => pixels
            .saturating_mul(8)
            .saturating_add(length.saturating_mul(2)),
        _ => 0,
    };
    let total = decoded.saturating_add(extra);
    total.saturating_add(total / 10)
}

/// What decoding a JPEG takes at its peak: the file three times (`image` reads it whole, and
/// each header parse may keep its segments and join its extended XMP into one more copy),
/// the decoded image (at most 4 bytes a pixel), and every component's coefficients (2 bytes
/// each): a progressive JPEG, and a baseline one whose scans do not each carry every
/// component, keep them for the whole frame until the last scan.
fn jpeg_memory(frame: JpegFrame, length: u64) -> u64 {
    let pixels = u64::from(frame.width) * u64::from(frame.height);
    let components = u64::from(frame.components);
    let per_pixel = components.min(4) + components * 2;
    pixels
        .saturating_mul(per_pixel)
        .saturating_add(length.saturating_mul(JPEG_FILE_COPIES))
}

/// How many times a JPEG's decoding may hold its file (`jpeg_memory`).
const JPEG_FILE_COPIES: u64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct JpegFrame {
    width: u32,
    height: u32,
    components: u8,
    progressive: bool,
}

/// The frame of a JPEG (`None` for anything else) as its decoder reads it: the decoder's own
/// header parse, streamed from the file (what it keeps of the segments before the frame, such
/// as profiles, is at most the file's size). A parse of the app's own could be made to
/// disagree with the decoder's (fill bytes, markers one of them does not know).
fn jpeg_frame(source: &mut (impl BufRead + Seek)) -> Option<JpegFrame> {
    let options = zune_core::options::DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(source, options);
    decoder.decode_headers().ok()?;
    let info = decoder.info()?;
    Some(JpegFrame {
        width: u32::from(info.width),
        height: u32::from(info.height),
        components: info.components,
        progressive: info.sof.is_progressive(),
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

    fn budget() -> MemoryBudget {
        MemoryBudget::new(400 << 20)
    }

    fn decoded(jpeg: &[u8]) -> DynamicImage {
        image::load_from_memory_with_format(jpeg, ImageFormat::Jpeg).unwrap()
    }

    #[test]
    fn sizes_fit_their_box_keep_the_aspect_and_never_grow() {
        let rendered = render(Cursor::new(png(1000, 500)), 50_000_000, &budget()).unwrap();
        assert_eq!((rendered.width, rendered.height), (1000, 500));
        let small = decoded(&rendered.thumbnails[0].1);
        let medium = decoded(&rendered.thumbnails[1].1);
        assert_eq!((small.width(), small.height()), (160, 80));
        assert_eq!((medium.width(), medium.height()), (640, 320));
        let tiny = render(Cursor::new(png(40, 30)), 50_000_000, &budget()).unwrap();
        for (_, jpeg) in &tiny.thumbnails {
            let thumb = decoded(jpeg);
            assert_eq!((thumb.width(), thumb.height()), (40, 30));
        }
    }

    #[test]
    fn an_image_over_the_pixel_limit_is_refused_from_its_header() {
        let e = render(Cursor::new(png(100, 100)), 9_999, &budget()).unwrap_err();
        assert!(matches!(e, RenderError::TooLarge { width: 100, .. }), "{e}");
    }

    #[test]
    fn truncated_and_foreign_bytes_are_refused() {
        let mut cut = png(300, 300);
        cut.truncate(cut.len() / 2);
        assert!(render(Cursor::new(cut), 50_000_000, &budget()).is_err());
        let e = render(
            Cursor::new(b"%PDF-1.7 not an image".to_vec()),
            50_000_000,
            &budget(),
        )
        .unwrap_err();
        assert!(matches!(e, RenderError::Unsupported), "{e}");
    }

    #[test]
    fn a_jpegs_frame_tells_what_decoding_it_takes() {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 80)
            .encode_image(&RgbImage::from_pixel(64, 48, image::Rgb([1, 2, 3])))
            .unwrap();
        let frame = jpeg_frame(&mut Cursor::new(&out)).unwrap();
        assert_eq!(
            frame,
            JpegFrame {
                width: 64,
                height: 48,
                components: 3,
                progressive: false
            }
        );
        // A progressive CMYK frame of 7000×7000 after a large APP segment.
        let mut header = vec![0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF];
        header.extend(std::iter::repeat_n(0u8, 0xFFFF - 2));
        header.extend_from_slice(&[0xFF, 0xDB, 0, 67, 0]);
        header.extend_from_slice(&[1; 64]);
        header.extend_from_slice(&[0xFF, 0xC2, 0, 20, 8, 0x1B, 0x58, 0x1B, 0x58, 4]);
        for id in 1..=4u8 {
            header.extend_from_slice(&[id, 0x11, 0]);
        }
        header.extend_from_slice(&[0xFF, 0xDA, 0, 14, 4]);
        for id in 1..=4u8 {
            header.extend_from_slice(&[id, 0]);
        }
        header.extend_from_slice(&[0, 0, 0, 0xFF, 0xD9]);
        let frame = jpeg_frame(&mut Cursor::new(&header)).unwrap();
        assert_eq!(
            frame,
            JpegFrame {
                width: 7000,
                height: 7000,
                components: 4,
                progressive: true
            }
        );
        assert!(jpeg_memory(frame, 1 << 20) > 50_000_000 * MAX_BYTES_PER_PIXEL);
        // Fill bytes before the frame's marker (`FF 00 FF C2`): a parse of the app's own took
        // the 00 for a marker with a length and skipped the real frame, reading a small fake
        // one further on; the decoder's parse sees what the decoder will decode.
        let at = header.iter().position(|&b| b == 0xC2).unwrap() - 1;
        let mut hidden = header[..at].to_vec();
        hidden.extend_from_slice(&[0xFF, 0x00]);
        hidden.extend_from_slice(&header[at..]);
        assert_eq!(jpeg_frame(&mut Cursor::new(&hidden)), Some(frame));
        // A phone's 24 MP baseline photo of 10 MB fits well within the default.
        let phone = JpegFrame {
            width: 6000,
            height: 4000,
            components: 3,
            progressive: false,
        };
        assert!(jpeg_memory(phone, 10_000_000) < 300_000_000);
        // A file padded far past its image is counted three times (read whole, parsed twice).
        assert!(jpeg_memory(phone, 70_000_000) > 400_000_000);
        assert_eq!(jpeg_frame(&mut Cursor::new(png(2, 2))), None);
    }

    #[test]
    fn what_a_decoder_holds_of_the_file_itself_counts() {
        // 8 MB allowed; a tiny picture with 10 MB after its end: a JPEG's decoder reads it
        // all, a WebP's holds its data twice.
        let picture = DynamicImage::ImageRgb8(RgbImage::from_pixel(64, 48, image::Rgb([9, 9, 9])));
        for format in [ImageFormat::Jpeg, ImageFormat::WebP] {
            let mut bytes = Cursor::new(Vec::new());
            picture.write_to(&mut bytes, format).unwrap();
            let small = bytes.get_ref().clone();
            assert!(
                render(Cursor::new(small), 1_000_000, &budget()).is_ok(),
                "{format:?}"
            );
            let mut padded = bytes.into_inner();
            padded.extend(std::iter::repeat_n(0u8, 10_000_000));
            let e = render(Cursor::new(padded), 1_000_000, &budget()).unwrap_err();
            assert!(
                matches!(e, RenderError::TooMuchMemory { .. }),
                "{format:?}: {e}"
            );
        }
    }
}
