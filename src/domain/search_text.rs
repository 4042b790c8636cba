//! The one fold search compares in: a file's `search_text` column is written with it and a
//! query is folded with it, so both sides agree on every backend (SQLite's `lower()` knows
//! ASCII only, PostgreSQL's depends on the database's locale).

use icu_normalizer::ComposingNormalizerBorrowed;

/// Between the folded title and the folded name in `search_text`. `fold` turns every control
/// character into a space, so no folded query contains it and no match spans the two.
const SEPARATOR: char = '\n';

/// `text` made comparable without regard to case: NFC (a name written decomposed, as some
/// file systems store it, matches the same name typed composed), then each character
/// lowercased, with the case foldings that lowercasing alone misses, then NFC again (a
/// lowercase letter may compose with the marks that follow it).
pub fn fold(text: &str) -> String {
    let nfc = ComposingNormalizerBorrowed::new_nfc();
    let mut out = String::with_capacity(text.len());
    for c in nfc.normalize(text).chars() {
        match c {
            // Full case folding: "STRASSE" and "Straße" are one word.
            'ß' | 'ẞ' => out.push_str("ss"),
            // The final and the long forms are the same letter as the usual one.
            'ς' => out.push('σ'),
            'ſ' => out.push('s'),
            // Lowercased, İ is i with a combining dot; a searcher types a plain i.
            'İ' => out.push('i'),
            c if c.is_control() => out.push(' '),
            c => out.extend(c.to_lowercase()),
        }
    }
    match nfc.normalize(&out) {
        std::borrow::Cow::Borrowed(_) => out,
        std::borrow::Cow::Owned(composed) => composed,
    }
}

/// The `search_text` of a file: its folded title and folded original name, the two fields a
/// search looks in. Never empty (the separator), which is how a row that predates the column
/// (its default, '') is told apart.
pub fn search_text(title: &str, original_name: &str) -> String {
    let mut out = fold(title);
    out.push(SEPARATOR);
    out.push_str(&fold(original_name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_beyond_ascii() {
        for (a, b) in [
            ("Überweisung", "überweisung"),
            ("STRASSE", "Straße"),
            ("ẞ", "ss"),
            ("ΟΔΟΣ", "οδος"),
            ("İstanbul", "istanbul"),
            ("ÅNGSTRÖM", "ångström"),
        ] {
            assert_eq!(fold(a), fold(b), "{a} / {b}");
        }
    }

    #[test]
    fn decomposed_and_composed_fold_alike() {
        assert_eq!(fold("U\u{0308}berweisung"), fold("Überweisung"));
        assert_eq!(fold("U\u{0308}"), "ü");
    }

    #[test]
    fn no_folded_text_holds_the_separator() {
        assert_eq!(fold("a\nb\tc\u{0}"), "a b c ");
        assert_eq!(search_text("Title", "Name.PDF"), "title\nname.pdf");
        assert!(!search_text("", "").is_empty());
    }
}
