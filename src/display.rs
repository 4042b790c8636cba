//! Showing values in a page: text that users chose (titles, file names, user names, and
//! messages that quote them), sizes (`size`) and times (`ShownTime`).
//!
//! HTML escaping keeps such text from becoming markup, but not from rearranging itself: a
//! right-to-left override (U+202E) makes `invoice\u{202E}fdp.exe` look like
//! `invoiceexe.pdf`, and zero-width or control characters hide what a name really is. Every
//! template shows such text through the `shown` filter, which turns each of these characters
//! into a visible `[U+XXXX]` marker, so nothing can fake an extension or hide a character.
//! Stored values stay as they were; only their display changes.

use std::borrow::Cow;

/// Characters that reorder or hide text without being seen, each on its own:
/// - the C0 and C1 controls, and the line and paragraph separators;
/// - Unicode's Default_Ignorable_Code_Point set (DerivedCoreProperties.txt), the characters
///   a font may draw as nothing: zero-width characters and joiners, every bidi control, the
///   soft hyphen, the Hangul fillers, the combining grapheme joiner, invisible operators,
///   variation selectors, tags, musical format controls, and the unassigned points Unicode
///   keeps for more of them (so a future one is marked before fonts know it);
/// - the interlinear annotation characters, which hide the text between them;
/// - U+2800 BRAILLE PATTERN BLANK: not ignorable, but drawn as a blank, and a known way to
///   make a name look empty or hide a word break.
///
/// Whitespace that looks like whitespace (U+00A0, U+2000–U+200A, U+3000) is left alone.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{061C}'
                | '\u{115F}'..='\u{1160}'
                | '\u{17B4}'..='\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF0}'..='\u{FFFB}'
                | '\u{1BCA0}'..='\u{1BCA3}'
                | '\u{1D173}'..='\u{1D17A}'
                | '\u{E0000}'..='\u{E0FFF}'
        )
}

/// Whether `c` is a pictograph a presentation selector may follow: the blocks holding every
/// base of Unicode's emoji variation sequences except the keycap bases `#`, `*` and `0`–`9`.
/// Those are left out on purpose: a selector after an ordinary digit would otherwise hide
/// in plain text, and a keycap emoji in a name is rare enough to show its marker.
fn is_emoji_base(c: char) -> bool {
    matches!(
        c,
        '\u{00A9}'
            | '\u{00AE}'
            | '\u{203C}'
            | '\u{2049}'
            | '\u{2122}'
            | '\u{2139}'
            | '\u{2190}'..='\u{2BFF}'
            | '\u{3030}'
            | '\u{303D}'
            | '\u{3297}'
            | '\u{3299}'
            | '\u{1F000}'..='\u{1FAFF}'
    ) && !is_invisible(c)
}

/// Whether `c`, coming right after `previous` (`None` at the start of the text), must be
/// shown as a marker.
///
/// One exception to `is_invisible`, so that emoji look like emoji: U+FE0E or U+FE0F right
/// after a pictograph (❤ + U+FE0F is the red-heart emoji) is kept, since it changes how that
/// visible character is drawn and hides nothing. A selector anywhere else (at the start,
/// after a letter or digit, after another selector, after an invisible character) draws as
/// nothing and is marked, as are all other variation selectors, whose bases are ideographs,
/// math symbols and Mongolian letters, where a mismatch between two similar names matters
/// more than their finest glyph. Joiners and tags get no exception either: a family emoji
/// shows its members with `[U+200D]` between them, and a subdivision flag its tags, since
/// either could otherwise hide inside any name.
pub fn is_hidden(previous: Option<char>, c: char) -> bool {
    is_invisible(c)
        && !(matches!(c, '\u{FE0E}' | '\u{FE0F}') && previous.is_some_and(is_emoji_base))
}

/// Each character of `text`, with whether it must be shown as a marker there (`is_hidden`).
pub fn marked_chars(text: &str) -> impl Iterator<Item = (char, bool)> + '_ {
    let mut previous = None;
    text.chars().map(move |c| {
        let hidden = is_hidden(previous, c);
        previous = Some(c);
        (c, hidden)
    })
}

/// `text` with every hidden character replaced by a visible `[U+XXXX]` marker.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    if !marked_chars(text).any(|(_, hidden)| hidden) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for (c, hidden) in marked_chars(text) {
        if hidden {
            shown.push_str(&format!("[U+{:04X}]", c as u32));
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

/// A size in bytes as every page shows it (and `static/upload.js` before the server has the
/// file), exactly:
/// - under 1024: the number and "bytes" ("0 bytes", "1 byte", "1023 bytes");
/// - else in the largest IEC unit (KiB, MiB, GiB, TiB, PiB, EiB; powers of 1024) the size is
///   at least one of, with one decimal rounded to nearest, and a trailing ".0" dropped:
///   "1 KiB", "1.5 KiB", "1023.9 KiB", "1024 KiB" (1,048,575 bytes: the unit is chosen before
///   rounding), "100 MiB".
///
/// The number and unit come from the `bytesize` crate's IEC display.
pub fn size(bytes: u64) -> String {
    match bytes {
        1 => "1 byte".to_owned(),
        0..1024 => format!("{bytes} bytes"),
        _ => {
            let shown = bytesize::ByteSize::b(bytes).display().iec().to_string();
            match shown.split_once(".0 ") {
                Some((whole, unit)) => format!("{whole} {unit}"),
                None => shown,
            }
        }
    }
}

/// A UTC time as pages show it: `datetime` for a `<time>` element, which `static/time.js`
/// turns into the reader's local time, and the UTC text shown without the script.
pub struct ShownTime {
    pub datetime: String,
    pub utc: String,
}

impl ShownTime {
    pub fn new(at: chrono::NaiveDateTime) -> Self {
        Self {
            datetime: at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            utc: at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

/// The filters templates use; a module with templates imports this as `filters`.
pub mod filters {
    /// `{{ file.title|shown }}`: the text with its hidden characters made visible; askama
    /// HTML-escapes the result as usual.
    #[askama::filter_fn]
    pub fn shown<T: std::fmt::Display>(value: T, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(super::neutralise(&value.to_string()).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_have_one_format() {
        for (bytes, shown) in [
            (0, "0 bytes"),
            (1, "1 byte"),
            (1023, "1023 bytes"),
            (1024, "1 KiB"),
            (1536, "1.5 KiB"),
            (1024 * 1024 - 1, "1024 KiB"),
            (1024 * 1024, "1 MiB"),
            (100 * 1024 * 1024, "100 MiB"),
            (5 * 1024 * 1024 * 1024 + 400 * 1024 * 1024, "5.4 GiB"),
            (u64::MAX, "16 EiB"),
        ] {
            assert_eq!(size(bytes), shown, "{bytes}");
        }
    }

    #[test]
    fn times_carry_utc_for_the_script_and_without_it() {
        let at = chrono::NaiveDate::from_ymd_opt(2026, 12, 3)
            .and_then(|d| d.and_hms_opt(15, 4, 5))
            .expect("a date");
        let shown = ShownTime::new(at);
        assert_eq!(shown.datetime, "2026-12-03T15:04:05Z");
        assert_eq!(shown.utc, "2026-12-03 15:04 UTC");
    }

    #[test]
    fn a_right_to_left_override_cannot_fake_an_extension() {
        assert_eq!(
            neutralise("invoice\u{202E}fdp.exe"),
            "invoice[U+202E]fdp.exe"
        );
        assert_eq!(
            neutralise("\u{2067}a\u{2069}\u{200B}b\u{FEFF}"),
            "[U+2067]a[U+2069][U+200B]b[U+FEFF]"
        );
        assert_eq!(neutralise("line\nbreak\0"), "line[U+000A]break[U+0000]");
    }

    /// The first and last character of every range that is marked.
    const MARKED_RANGES: &[(char, char)] = &[
        ('\u{0000}', '\u{001F}'),
        ('\u{007F}', '\u{009F}'),
        ('\u{00AD}', '\u{00AD}'),
        ('\u{034F}', '\u{034F}'),
        ('\u{061C}', '\u{061C}'),
        ('\u{115F}', '\u{1160}'),
        ('\u{17B4}', '\u{17B5}'),
        ('\u{180B}', '\u{180F}'),
        ('\u{200B}', '\u{200F}'),
        ('\u{2028}', '\u{202E}'),
        ('\u{2060}', '\u{206F}'),
        ('\u{2800}', '\u{2800}'),
        ('\u{3164}', '\u{3164}'),
        ('\u{FE00}', '\u{FE0F}'),
        ('\u{FEFF}', '\u{FEFF}'),
        ('\u{FFA0}', '\u{FFA0}'),
        ('\u{FFF0}', '\u{FFFB}'),
        ('\u{1BCA0}', '\u{1BCA3}'),
        ('\u{1D173}', '\u{1D17A}'),
        ('\u{E0000}', '\u{E0FFF}'),
    ];

    #[test]
    fn both_ends_of_every_range_are_marked() {
        for &(first, last) in MARKED_RANGES {
            for c in [first, last] {
                let marker = format!("[U+{:04X}]", c as u32);
                assert_eq!(
                    neutralise(&format!("a{c}b")),
                    format!("a{marker}b"),
                    "{marker}"
                );
            }
        }
        // Inside the ranges, the characters the tests above name.
        for c in [
            '\u{E0041}',
            '\u{E007F}',
            '\u{E0100}',
            '\u{E01EF}',
            '\u{2064}',
        ] {
            assert_ne!(neutralise(&c.to_string()), c.to_string(), "{:X}", c as u32);
        }
    }

    #[test]
    fn the_neighbours_of_the_ranges_are_not_marked() {
        for c in [
            '\u{00A0}',
            '\u{00AC}',
            '\u{00AE}',
            '\u{034E}',
            '\u{0350}',
            '\u{061B}',
            '\u{061D}',
            '\u{115E}',
            '\u{1161}',
            '\u{17B3}',
            '\u{17B6}',
            '\u{180A}',
            '\u{1810}',
            '\u{200A}',
            '\u{2010}',
            '\u{2027}',
            '\u{202F}',
            '\u{205F}',
            '\u{2070}',
            '\u{27FF}',
            '\u{2801}',
            '\u{3163}',
            '\u{3165}',
            '\u{FDFF}',
            '\u{FE10}',
            '\u{FF9F}',
            '\u{FFA1}',
            '\u{FFEF}',
            '\u{FFFC}',
            '\u{1BC9F}',
            '\u{1BCA4}',
            '\u{1D172}',
            '\u{1D17B}',
            '\u{DFFFF}',
            '\u{E1000}',
        ] {
            let text = format!("a{c}b");
            assert!(
                matches!(neutralise(&text), Cow::Borrowed(_)),
                "U+{:04X} was marked",
                c as u32
            );
        }
    }

    #[test]
    fn an_emoji_keeps_its_presentation_selector_and_nothing_else_does() {
        for text in [
            "\u{2764}\u{FE0F} notes.txt",
            "\u{2764}\u{FE0E}",
            "\u{00A9}\u{FE0F}",
            "\u{1F600}\u{FE0F}",
        ] {
            assert!(
                matches!(neutralise(text), Cow::Borrowed(t) if t == text),
                "{text:?}"
            );
        }
        for (text, shown) in [
            ("\u{FE0F}a", "[U+FE0F]a"),
            ("a\u{FE0F}", "a[U+FE0F]"),
            ("a.pd\u{FE0E}f", "a.pd[U+FE0E]f"),
            ("\u{2764}\u{FE0F}\u{FE0F}", "\u{2764}\u{FE0F}[U+FE0F]"),
            ("\u{2764}\u{FE0E}\u{FE0F}", "\u{2764}\u{FE0E}[U+FE0F]"),
            ("\u{2764}\u{FE00}", "\u{2764}[U+FE00]"),
            ("\u{2764}\u{E0100}", "\u{2764}[U+E0100]"),
            ("\u{200B}\u{FE0F}", "[U+200B][U+FE0F]"),
            ("\u{2800}\u{FE0F}", "[U+2800][U+FE0F]"),
            // A keycap's base is an ASCII digit: its selector is marked (see `is_emoji_base`).
            ("1\u{FE0F}\u{20E3}", "1[U+FE0F]\u{20E3}"),
            ("\u{1F468}\u{200D}\u{1F469}", "\u{1F468}[U+200D]\u{1F469}"),
        ] {
            assert_eq!(neutralise(text), shown, "{text:?}");
        }
    }

    #[test]
    fn ordinary_text_is_left_as_it_is() {
        for text in [
            "report.pdf",
            "résumé final",
            "日本語",
            "שלום.txt",
            "a b\u{00A0}c",
            "\u{1F600} party \u{2764}\u{FE0F}.jpg",
        ] {
            assert!(
                matches!(neutralise(text), Cow::Borrowed(t) if t == text),
                "{text}"
            );
        }
    }

    /// The character class of `var NAME = /[…]/u;` in the upload script, as ranges.
    fn script_class(name: &str) -> Vec<(u32, u32)> {
        let script = include_str!("../static/upload.js");
        let start = format!("var {name} = /[");
        let class = script
            .split_once(start.as_str())
            .and_then(|(_, rest)| rest.split_once("]/u;"))
            .map(|(class, _)| class)
            .unwrap_or_else(|| panic!("no {name} in the upload script"));
        let mut points = Vec::new();
        let mut dash = false;
        let mut rest = class;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('-') {
                dash = true;
                rest = after;
                continue;
            }
            let after = rest.strip_prefix("\\u").expect("only \\u escapes");
            let (hex, after) = match after.strip_prefix('{') {
                Some(braced) => braced.split_once('}').expect("a closing brace"),
                None => after.split_at(4),
            };
            let point = u32::from_str_radix(hex, 16).expect("hex");
            if std::mem::take(&mut dash) {
                let last: &mut (u32, u32) = points.last_mut().expect("a range start");
                last.1 = point;
            } else {
                points.push((point, point));
            }
            rest = after;
        }
        points
    }

    /// The upload script shows names before the server has seen them: it must mark what
    /// the pages mark.
    #[test]
    fn the_upload_script_marks_the_same_characters() {
        let invisible = script_class("INVISIBLE");
        let emoji = script_class("EMOJI_BASE");
        let within = |ranges: &[(u32, u32)], c: char| {
            ranges
                .iter()
                .any(|&(first, last)| (first..=last).contains(&(c as u32)))
        };
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            assert_eq!(within(&invisible, c), is_invisible(c), "U+{:04X}", c as u32);
            assert_eq!(
                within(&emoji, c) && !is_invisible(c),
                is_emoji_base(c),
                "U+{:04X}",
                c as u32
            );
        }
    }

    /// Every template shows user-chosen text through `shown`: a new template or field that
    /// forgets it fails here. Form values (`value="…"`) stay raw so that saving a form does
    /// not rewrite what was stored.
    #[test]
    fn every_template_shows_user_text_through_the_filter() {
        let templates = [
            include_str!("../templates/base.html"),
            include_str!("../templates/error.html"),
            include_str!("../templates/files.html"),
            include_str!("../templates/login.html"),
            include_str!("../templates/list_controls.html"),
            include_str!("../templates/pager.html"),
            include_str!("../templates/admin/bulk.html"),
            include_str!("../templates/admin/delete.html"),
            include_str!("../templates/admin/file.html"),
            include_str!("../templates/admin/files.html"),
            include_str!("../templates/admin/new.html"),
            include_str!("../templates/admin/upload_result.html"),
            include_str!("../templates/admin/user.html"),
            include_str!("../templates/admin/users.html"),
            include_str!("../templates/admin/user_delete.html"),
            include_str!("../templates/account.html"),
            include_str!("../templates/nav.html"),
            include_str!("../templates/error_nav.html"),
        ];
        let is_user_text = |field: &str| {
            field.ends_with("name")
                || field.ends_with("title")
                || ["owner", "flash", "error", "message", "q", "user", "r"].contains(&field)
        };
        for template in templates {
            let mut rest = template;
            while let Some(start) = rest.find("{{") {
                let before = &rest[..start];
                let Some(end) = rest[start..].find("}}") else {
                    break;
                };
                let expr = rest[start + 2..start + end].trim();
                rest = &rest[start + end + 2..];
                if before.ends_with("value=\"") || expr.ends_with("|shown") {
                    continue;
                }
                let last = expr.rsplit('.').next().unwrap_or(expr);
                assert!(
                    !is_user_text(last),
                    "`{{{{ {expr} }}}}` shows user text without `|shown`"
                );
            }
        }
    }
}
