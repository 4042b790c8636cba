//! Showing text that users chose (titles, file names, user names, and messages that quote
//! them) in a page.
//!
//! HTML escaping keeps such text from becoming markup, but not from rearranging itself: a
//! right-to-left override (U+202E) makes `invoice\u{202E}fdp.exe` look like
//! `invoiceexe.pdf`, and zero-width or control characters hide what a name really is. Every
//! template shows such text through the `shown` filter, which turns each of these characters
//! into a visible `[U+XXXX]` marker, so nothing can fake an extension or hide a character.
//! Stored values stay as they were; only their display changes.

use std::borrow::Cow;

/// Characters that reorder or hide text without being seen: bidi embeddings, overrides,
/// isolates and marks; zero-width characters; line and paragraph separators; the BOM; and
/// the C0/C1 control characters.
pub fn is_invisible_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `text` with every invisible control replaced by a visible `[U+XXXX]` marker.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_invisible_control) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_invisible_control(c) {
            shown.push_str(&format!("[U+{:04X}]", c as u32));
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

/// The filters templates use; a module with templates imports this as `filters`.
pub mod filters {
    /// `{{ file.title|shown }}`: the text with its invisible controls made visible; askama
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

    #[test]
    fn ordinary_text_is_left_as_it_is() {
        for text in [
            "report.pdf",
            "résumé final",
            "日本語",
            "שלום.txt",
            "a b\u{00A0}c",
        ] {
            assert!(
                matches!(neutralise(text), Cow::Borrowed(t) if t == text),
                "{text}"
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
            include_str!("../templates/admin/delete.html"),
            include_str!("../templates/admin/file.html"),
            include_str!("../templates/admin/files.html"),
            include_str!("../templates/admin/new.html"),
            include_str!("../templates/admin/upload_result.html"),
            include_str!("../templates/admin/user.html"),
            include_str!("../templates/admin/users.html"),
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
