//! How a download presents itself to the browser: the `Content-Type` it is sent as and its
//! `Content-Disposition` (README: "Downloads"). This is where stored XSS through an upload is
//! stopped: anything a browser could run (HTML, SVG, XML, scripts, style sheets) is always an
//! `attachment` sent as `application/octet-stream`, whatever was asked for. Such content is
//! recognised by its stored (sniffed) type *and* by its name: a script is plain text to the
//! sniffer, and a browser or the desktop may go by the extension of the saved file.

use actix_web::http::header::{Charset, ContentDisposition, DispositionParam, DispositionType};
use actix_web::http::header::{ExtendedValue, HeaderValue};
use mime::Mime;

use crate::display::marked_chars;

/// Shown when a name has nothing left after sanitising.
const FALLBACK_NAME: &str = "download";
/// Longest name we send; browsers and file systems cut longer ones anyway.
const MAX_NAME_CHARS: usize = 200;
/// Extensions of active content that a type guess from the name may not know (or knows
/// under a harmless-looking type), compared case-insensitively.
const ACTIVE_EXTENSIONS: &[&str] = &[
    "js", "mjs", "cjs", "jsx", "html", "htm", "shtml", "shtm", "xhtml", "xht", "mht", "mhtml",
    "hta", "xbl", "eml", "svg", "svgz", "xml", "xsl", "xslt", "rss", "atom", "css", "swf", "wasm",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presentation {
    pub content_type: Mime,
    pub inline: bool,
    /// The sanitised name, as UTF-8.
    pub file_name: String,
}

impl Presentation {
    /// Decides type and disposition for a stored content type and original name;
    /// `want_inline` is the user's `?inline=1`. Active content by either the type or the
    /// name is an octet-stream attachment.
    pub fn decide(stored_type: &str, original_name: &str, want_inline: bool) -> Self {
        let parsed: Option<Mime> = stored_type.parse().ok();
        let file_name = sanitize_name(original_name);
        // Every name a client may save under counts: the original, the sanitised one in
        // `filename*`, and its transliteration in `filename` ("report.htmł" → "report.html").
        let named_active = is_active_name(original_name)
            || (file_name != original_name && is_active_name(&file_name))
            || is_active_name(&ascii_fallback(&file_name));
        match parsed {
            Some(mime) if !named_active && !is_active_content(&mime) => Self {
                inline: want_inline && is_inline_safe(&mime),
                content_type: with_utf8_charset(mime),
                file_name,
            },
            _ => Self {
                content_type: mime::APPLICATION_OCTET_STREAM,
                inline: false,
                file_name,
            },
        }
    }

    /// Whether a page of this site may frame the answer: a PDF shown inline, the file page's
    /// preview. Everything else refuses every frame.
    pub fn frameable(&self) -> bool {
        self.inline && self.content_type.essence_str() == mime::APPLICATION_PDF.essence_str()
    }

    /// RFC 6266: an ASCII `filename` fallback and the exact name as `filename*=UTF-8''…`,
    /// both always, so every client reads the same name whichever parameter it prefers.
    pub fn content_disposition(&self) -> ContentDisposition {
        let ascii = ascii_fallback(&self.file_name);
        ContentDisposition {
            disposition: if self.inline {
                DispositionType::Inline
            } else {
                DispositionType::Attachment
            },
            parameters: vec![
                DispositionParam::Filename(ascii),
                DispositionParam::FilenameExt(ExtendedValue {
                    charset: Charset::Ext("UTF-8".to_owned()),
                    language_tag: None,
                    value: self.file_name.as_bytes().to_vec(),
                }),
            ],
        }
    }

    pub fn content_disposition_value(&self) -> HeaderValue {
        // Every byte of it is sanitised ASCII or percent-encoded, so this cannot fail; the
        // fallback keeps a download working even if that ever changed.
        HeaderValue::from_str(&self.content_disposition().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
    }
}

/// Whether a name says it is active content: by the types guessed from its extension, or by
/// the extension itself. Trailing dots and spaces are ignored, as Windows ignores them.
fn is_active_name(name: &str) -> bool {
    let name = name.trim_end_matches(['.', ' ']);
    let Some((_, extension)) = name.rsplit_once('.') else {
        return false;
    };
    let extension = extension.to_ascii_lowercase();
    ACTIVE_EXTENSIONS.contains(&extension.as_str())
        || mime_guess::from_ext(&extension)
            .iter()
            .any(|guess| is_active_content(&guess))
}

/// Types a browser would render or run as a page or script: never shown inline, never sent
/// under their own type.
fn is_active_content(mime: &Mime) -> bool {
    let essence = mime.essence_str();
    let subtype = mime.subtype().as_str();
    let suffix = mime.suffix().map(|s| s.as_str());
    matches!(
        essence,
        "text/html"
            | "application/xhtml+xml"
            | "image/svg+xml"
            | "text/xml"
            | "application/xml"
            | "text/xsl"
            | "application/xslt+xml"
            | "text/css"
            | "application/x-shockwave-flash"
            | "application/java-archive"
            | "multipart/x-mixed-replace"
            | "application/wasm"
    ) || suffix == Some("xml")
        || subtype.contains("javascript")
        || subtype.contains("ecmascript")
        || subtype.contains("html")
}

/// Types that may be shown inline when asked: images (SVG excluded above), PDF, plain text,
/// audio and video.
fn is_inline_safe(mime: &Mime) -> bool {
    let top = mime.type_();
    top == mime::IMAGE
        || top == mime::AUDIO
        || top == mime::VIDEO
        || *mime == mime::APPLICATION_PDF
        || (top == mime::TEXT && mime.subtype() == mime::PLAIN)
}

/// Text we store was sniffed as UTF-8: say so, or a browser may guess another charset.
fn with_utf8_charset(mime: Mime) -> Mime {
    if mime.type_() == mime::TEXT && mime.get_param(mime::CHARSET).is_none() {
        format!("{}; charset=utf-8", mime.essence_str())
            .parse()
            .unwrap_or(mime)
    } else {
        mime
    }
}

/// The original name without anything that could break the header or fool the user: no
/// control characters (CR, LF, NUL…), quotes, slashes, backslashes, bidi controls or other
/// invisible characters (the ones `shown` marks in pages, so an emoji keeps its selector).
pub fn sanitize_name(name: &str) -> String {
    let cleaned: String = marked_chars(name)
        .map(|(c, hidden)| match c {
            '"' | '/' | '\\' => '_',
            _ if hidden => '_',
            c => c,
        })
        .take(MAX_NAME_CHARS)
        .collect();
    let trimmed = cleaned.trim().trim_matches('.');
    if trimmed.is_empty() {
        FALLBACK_NAME.to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// A readable ASCII version of a sanitised name ("résumé" → "resume"), for clients that do
/// not read `filename*`. `%` is replaced too: some clients would decode it.
pub fn ascii_fallback(name: &str) -> String {
    let transliterated = deunicode::deunicode_with_tofu(name, "_");
    let ascii: String = transliterated
        .chars()
        .map(|c| match c {
            ' '..='~' if !matches!(c, '"' | '\\' | '/' | '%' | ';') => c,
            _ => '_',
        })
        .collect();
    let trimmed = ascii.trim();
    if trimmed.is_empty() || trimmed.chars().all(|c| c == '_' || c == '.') {
        FALLBACK_NAME.to_owned()
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(stored: &str, name: &str, inline: bool) -> (String, String) {
        let p = Presentation::decide(stored, name, inline);
        (
            p.content_type.to_string(),
            p.content_disposition().to_string(),
        )
    }

    #[test]
    fn unicode_names_get_an_ascii_fallback_and_the_exact_name() {
        let (_, cd) = header("application/pdf", "résumé final.pdf", false);
        assert_eq!(
            cd,
            "attachment; filename=\"resume final.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20final.pdf"
        );
        let (_, cd) = header("text/plain", "Heizölrückstoßabdämpfung.txt", false);
        assert!(cd.starts_with("attachment; filename=\"Heizolruckstossabdampfung.txt\"; "));
        assert!(cd.contains("filename*=UTF-8''Heiz%C3%B6lr%C3%BCcksto%C3%9Fabd%C3%A4mpfung.txt"));
        let (_, cd) = header("text/plain", "plain.txt", false);
        assert_eq!(
            cd,
            "attachment; filename=\"plain.txt\"; filename*=UTF-8''plain.txt"
        );
    }

    #[test]
    fn hostile_names_cannot_break_the_header() {
        for name in [
            "a\"b.txt",
            "a\r\nSet-Cookie: x=1.txt",
            "../../etc/passwd",
            "a\\b.txt",
            "evil\u{202E}fdp.exe",
            "\0",
            "",
            "...",
            "100%.txt",
        ] {
            let p = Presentation::decide("text/plain", name, false);
            let cd = p.content_disposition().to_string();
            assert!(
                !cd.contains('\r') && !cd.contains('\n') && !cd.contains('\0'),
                "{name:?}: {cd}"
            );
            assert!(
                !p.file_name.contains(['"', '/', '\\', '\u{202E}']),
                "{name:?}"
            );
            let fallback = ascii_fallback(&p.file_name);
            assert!(!fallback.contains(['"', '/', '\\', '%']), "{name:?}");
            assert!(!p.file_name.is_empty());
            assert!(p.content_disposition_value().to_str().is_ok());
        }
        assert_eq!(sanitize_name(""), "download");
        assert_eq!(sanitize_name("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitize_name("a\u{3164}\u{E0041}\u{FE0F}.pdf"), "a___.pdf");
        assert_eq!(
            sanitize_name("\u{2764}\u{FE0F}.txt"),
            "\u{2764}\u{FE0F}.txt"
        );
        assert_eq!(ascii_fallback("日本"), "Ri Ben");
        assert_eq!(ascii_fallback("\u{10FFFF}"), "download");
    }

    #[test]
    fn active_content_is_always_an_octet_stream_attachment() {
        for stored in [
            "text/html",
            "image/svg+xml",
            "application/xml",
            "text/xml",
            "application/javascript",
            "text/javascript",
            "application/xhtml+xml",
            "application/atom+xml",
            "text/css",
            "not a type",
        ] {
            let p = Presentation::decide(stored, "x", true);
            assert_eq!(p.content_type, mime::APPLICATION_OCTET_STREAM, "{stored}");
            assert!(!p.inline, "{stored}");
        }
    }

    #[test]
    fn active_content_is_recognised_by_its_name_too() {
        for (stored, name) in [
            ("text/plain", "app.js"),
            ("text/plain", "module.MJS"),
            ("text/plain", "evil.html"),
            ("text/plain", "evil.htm"),
            ("text/plain", "page.xhtml"),
            ("text/plain", "style.css"),
            ("text/plain", "feed.xml"),
            ("text/plain", "t.xsl"),
            ("image/png", "image.svg"),
            ("application/octet-stream", "movie.swf"),
            ("application/octet-stream", "code.wasm"),
            ("text/plain", "trailing.html. ."),
            ("image/png", "rtl\u{202E}lmth.png.html"),
            ("application/pdf", "a.shtm"),
            ("application/pdf", "run.hta"),
            ("application/pdf", "binding.xbl"),
            ("application/pdf", "message.eml"),
        ] {
            let p = Presentation::decide(stored, name, true);
            assert_eq!(p.content_type, mime::APPLICATION_OCTET_STREAM, "{name}");
            assert!(!p.inline, "{name}");
        }
        for (stored, name) in [
            ("text/plain", "notes.txt"),
            ("image/png", "photo.png"),
            ("application/pdf", "html.pdf"),
            ("text/plain", "README"),
            ("text/plain", "js"),
        ] {
            let p = Presentation::decide(stored, name, true);
            assert!(p.inline, "{name}");
        }
    }

    #[test]
    fn a_name_active_only_in_its_ascii_fallback_is_active() {
        for (stored, name, fallback) in [
            ("text/plain", "report.htm\u{142}", "report.html"),
            ("text/plain", "x.j\u{15B}", "x.js"),
            ("image/png", "x.sv\u{11F}", "x.svg"),
            ("text/plain", "x.xm\u{13A}", "x.xml"),
            ("text/plain", "x.\u{FF48}\u{FF54}\u{FF4D}\u{FF4C}", "x.html"),
        ] {
            assert_eq!(ascii_fallback(&sanitize_name(name)), fallback, "{name}");
            let p = Presentation::decide(stored, name, true);
            assert_eq!(p.content_type, mime::APPLICATION_OCTET_STREAM, "{name}");
            assert!(!p.inline, "{name}");
        }
        // A fallback that is not active leaves a harmless name alone.
        assert!(Presentation::decide("text/plain", "r\u{E9}sum\u{E9}.txt", true).inline);
    }

    #[test]
    fn inline_only_when_asked_and_safe() {
        assert!(Presentation::decide("image/png", "a.png", true).inline);
        assert!(!Presentation::decide("image/png", "a.png", false).inline);
        assert!(Presentation::decide("application/pdf", "a.pdf", true).inline);
        assert!(Presentation::decide("video/mp4", "a.mp4", true).inline);
        assert!(Presentation::decide("audio/mpeg", "a.mp3", true).inline);
        assert!(!Presentation::decide("application/zip", "a.zip", true).inline);
        assert!(!Presentation::decide("text/csv", "a.csv", true).inline);
        let text = Presentation::decide("text/plain", "a.txt", true);
        assert!(text.inline);
        assert_eq!(text.content_type.to_string(), "text/plain; charset=utf-8");
        assert_eq!(
            Presentation::decide("application/zip", "a.zip", true).content_type,
            "application/zip"
        );
    }

    mod properties {
        use super::*;
        use actix_web::http::header::DispositionParam;
        use proptest::prelude::*;

        /// Names with the characters that break headers or fool people, and anything else.
        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                "\\PC{0,60}",
                "[a-zA-Z0-9 ._%;,='\"\\\\/\r\n\t\0\u{202E}\u{2066}\u{200B}\u{2764}\u{FE0F}\u{E0041}é日-]{0,40}",
                any::<String>(),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn every_name_gives_a_clean_header_that_parses_back_to_it(
                name in name(),
                inline in any::<bool>(),
            ) {
                let p = Presentation::decide("text/plain", &name, inline);
                let value = p.content_disposition_value();
                let text = value.to_str().expect("a visible-ASCII header");
                prop_assert!(text.bytes().all(|b| (b' '..=b'~').contains(&b)), "{text:?}");
                prop_assert!(text.contains("; filename=\""), "{text}");
                prop_assert!(text.contains("; filename*=UTF-8''"), "{text}");
                prop_assert!(!p.file_name.is_empty());
                prop_assert!(!marked_chars(&p.file_name).any(|(c, hidden)| hidden
                    || matches!(c, '"' | '/' | '\\')), "{:?}", p.file_name);

                let parsed = ContentDisposition::from_raw(&value).expect("it parses");
                let fallback = ascii_fallback(&p.file_name);
                prop_assert_eq!(parsed.get_filename(), Some(fallback.as_str()));
                let exact = parsed.parameters.iter().find_map(|param| match param {
                    DispositionParam::FilenameExt(ext) => Some(ext.value.clone()),
                    _ => None,
                });
                prop_assert_eq!(exact, Some(p.file_name.as_bytes().to_vec()));
            }
        }
    }
}
