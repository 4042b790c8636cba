//! What kind of file a row holds, in words people use: the one place that turns the sniffed
//! content type and the original name into a label ("Word document", "PNG image") and a
//! family (the list filter's image, document, audio, video, archive, other).
//!
//! The sniffed type is trusted first; the name only refines a type the bytes leave open: a
//! ZIP container (`.docx`, `.xlsx`, `.odt`, `.epub` are ZIP files inside), an OLE container
//! (old Office files), plain text (`.md`, `.json`) and bytes nothing recognised. A PNG named
//! `report.docx` is a PNG image, never a Word document.

/// The list filter's groups of types. Stored in `files.type_family` (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TypeFamily {
    Image,
    Document,
    Audio,
    Video,
    Archive,
    Other,
}

impl TypeFamily {
    pub const ALL: [TypeFamily; 6] = [
        TypeFamily::Image,
        TypeFamily::Document,
        TypeFamily::Audio,
        TypeFamily::Video,
        TypeFamily::Archive,
        TypeFamily::Other,
    ];

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Document => "document",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Archive => "archive",
            Self::Other => "other",
        }
    }

    /// The filter's choice, in words.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Image => "Images",
            Self::Document => "Documents",
            Self::Audio => "Audio",
            Self::Video => "Video",
            Self::Archive => "Archives",
            Self::Other => "Other",
        }
    }
}

/// A file's type as lists and pages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileType {
    pub family: TypeFamily,
    pub label: String,
}

fn named(family: TypeFamily, label: &str) -> FileType {
    FileType {
        family,
        label: label.to_owned(),
    }
}

/// The lowercased extension of a file name, without the dot; none for `.profile` or `name`.
fn extension(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The documents and archives that are ZIP files inside.
fn zip_based(ext: &str) -> Option<FileType> {
    use TypeFamily::{Archive, Document};
    Some(match ext {
        "docx" | "docm" | "dotx" => named(Document, "Word document"),
        "xlsx" | "xlsm" | "xltx" => named(Document, "Excel spreadsheet"),
        "pptx" | "pptm" | "potx" => named(Document, "PowerPoint presentation"),
        "odt" => named(Document, "OpenDocument text"),
        "ods" => named(Document, "OpenDocument spreadsheet"),
        "odp" => named(Document, "OpenDocument presentation"),
        "epub" => named(Document, "EPUB e-book"),
        "pages" => named(Document, "Pages document"),
        "numbers" => named(Document, "Numbers spreadsheet"),
        "key" => named(Document, "Keynote presentation"),
        "jar" => named(Archive, "Java archive"),
        "apk" => named(Archive, "Android package"),
        _ => return None,
    })
}

/// Old Office files, which are OLE containers inside.
fn ole_based(ext: &str) -> Option<FileType> {
    use TypeFamily::{Document, Other};
    Some(match ext {
        "doc" | "dot" => named(Document, "Word document"),
        "xls" | "xlt" => named(Document, "Excel spreadsheet"),
        "ppt" | "pot" => named(Document, "PowerPoint presentation"),
        "msg" => named(Document, "Outlook message"),
        "msi" => named(Other, "Windows installer"),
        _ => return None,
    })
}

/// Text whose name says more than "text".
fn text_named(ext: &str) -> Option<FileType> {
    use TypeFamily::Document;
    Some(match ext {
        "md" | "markdown" => named(Document, "Markdown text"),
        "csv" => named(Document, "CSV table"),
        "tsv" => named(Document, "TSV table"),
        "json" => named(Document, "JSON data"),
        "log" => named(Document, "Log file"),
        "rtf" => named(Document, "Rich text document"),
        "ics" => named(Document, "Calendar"),
        "vcf" => named(Document, "Contact card"),
        _ => return None,
    })
}

/// `image/svg+xml` → `SVG`, `video/x-matroska` → `MATROSKA`: the subtype as a short name.
fn short_subtype(sub: &str) -> String {
    let sub = sub.split('+').next().unwrap_or(sub);
    let sub = sub.strip_prefix("x-").unwrap_or(sub);
    let sub = sub.strip_prefix("vnd.").unwrap_or(sub);
    match sub {
        "jpeg" | "pjpeg" => "JPEG".to_owned(),
        "mpeg" => "MPEG".to_owned(),
        "quicktime" => "QuickTime".to_owned(),
        "matroska" => "Matroska".to_owned(),
        "msvideo" => "AVI".to_owned(),
        "ms-bmp" => "BMP".to_owned(),
        "microsoft.icon" => "ICO".to_owned(),
        "adobe.photoshop" => "Photoshop".to_owned(),
        other => other.to_uppercase(),
    }
}

impl FileType {
    /// The type of a file named `name` whose bytes were sniffed as `content_type`.
    pub fn of(name: &str, content_type: &str) -> FileType {
        use TypeFamily::{Archive, Audio, Document, Image, Other, Video};
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let (top, sub) = essence.split_once('/').unwrap_or((essence.as_str(), ""));
        let ext = extension(name);
        let ext = ext.as_deref().unwrap_or("");
        match (top, sub) {
            ("image", sub) => FileType {
                family: Image,
                label: format!("{} image", short_subtype(sub)),
            },
            ("audio", sub) => FileType {
                family: Audio,
                label: format!("{} audio", short_subtype(sub)),
            },
            ("video", sub) => FileType {
                family: Video,
                label: format!("{} video", short_subtype(sub)),
            },
            ("application", "zip") => {
                zip_based(ext).unwrap_or_else(|| named(Archive, "ZIP archive"))
            }
            ("application", "x-ole-storage" | "x-cfb") => {
                ole_based(ext).unwrap_or_else(|| named(Other, "Office file"))
            }
            ("application", "msword") => named(Document, "Word document"),
            ("application", "vnd.ms-excel") => named(Document, "Excel spreadsheet"),
            ("application", "vnd.ms-powerpoint") => named(Document, "PowerPoint presentation"),
            ("application", sub) if sub.starts_with("vnd.openxmlformats-officedocument.") => {
                let kind = sub.rsplit('.').next().unwrap_or("");
                match kind {
                    "document" => named(Document, "Word document"),
                    "sheet" => named(Document, "Excel spreadsheet"),
                    "presentation" => named(Document, "PowerPoint presentation"),
                    _ => named(Document, "Office document"),
                }
            }
            ("application", sub) if sub.starts_with("vnd.oasis.opendocument.") => {
                match sub.rsplit('.').next().unwrap_or("") {
                    "text" => named(Document, "OpenDocument text"),
                    "spreadsheet" => named(Document, "OpenDocument spreadsheet"),
                    "presentation" => named(Document, "OpenDocument presentation"),
                    _ => named(Document, "OpenDocument file"),
                }
            }
            ("application", "epub+zip") => named(Document, "EPUB e-book"),
            ("application", "pdf") => named(Document, "PDF document"),
            ("application", "rtf") | ("text", "rtf") => named(Document, "Rich text document"),
            ("application", "json") => named(Document, "JSON data"),
            ("application", "xml") | ("text", "xml") => named(Document, "XML document"),
            ("application", "postscript") => named(Document, "PostScript document"),
            ("application", "gzip" | "x-gzip") => named(Archive, "GZIP archive"),
            ("application", "x-tar") => named(Archive, "TAR archive"),
            ("application", "x-bzip2") => named(Archive, "BZIP2 archive"),
            ("application", "x-xz") => named(Archive, "XZ archive"),
            ("application", "zstd") => named(Archive, "Zstandard archive"),
            ("application", "x-7z-compressed") => named(Archive, "7-Zip archive"),
            ("application", "vnd.rar" | "x-rar-compressed") => named(Archive, "RAR archive"),
            ("application", "vnd.debian.binary-package") => named(Archive, "Debian package"),
            ("application", "x-rpm") => named(Archive, "RPM package"),
            ("application", "x-iso9660-image") => named(Archive, "Disk image"),
            ("application", "x-apple-diskimage") => named(Archive, "Disk image"),
            ("application", "x-msdownload" | "vnd.microsoft.portable-executable") => {
                named(Other, "Windows program")
            }
            ("application", "x-executable" | "x-elf") => named(Other, "Program"),
            ("application", "x-sqlite3" | "vnd.sqlite3") => named(Other, "SQLite database"),
            ("application", "wasm") => named(Other, "WebAssembly"),
            ("font", sub) => FileType {
                family: Other,
                label: format!("{} font", short_subtype(sub)),
            },
            ("text", "html") => named(Document, "HTML page"),
            ("text", "csv") => named(Document, "CSV table"),
            ("text", "markdown") => named(Document, "Markdown text"),
            ("text", "calendar") => named(Document, "Calendar"),
            ("text", "vcard") => named(Document, "Contact card"),
            ("text", _) => text_named(ext).unwrap_or_else(|| named(Document, "Text")),
            _ => named(Other, "Binary file"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(name: &str, content_type: &str, label: &str, family: TypeFamily) {
        let t = FileType::of(name, content_type);
        assert_eq!(
            (t.label.as_str(), t.family),
            (label, family),
            "{name} {content_type}"
        );
    }

    #[test]
    fn the_name_refines_a_container_the_bytes_leave_open() {
        use TypeFamily::*;
        check("Letter.DOCX", "application/zip", "Word document", Document);
        check(
            "budget.xlsx",
            "application/zip",
            "Excel spreadsheet",
            Document,
        );
        check(
            "slides.pptx",
            "application/zip",
            "PowerPoint presentation",
            Document,
        );
        check(
            "notes.odt",
            "application/zip",
            "OpenDocument text",
            Document,
        );
        check("book.epub", "application/zip", "EPUB e-book", Document);
        check("photos.zip", "application/zip", "ZIP archive", Archive);
        check("zip", "application/zip", "ZIP archive", Archive);
        check(
            "old.doc",
            "application/x-ole-storage",
            "Word document",
            Document,
        );
        check("readme.md", "text/plain", "Markdown text", Document);
        check("notes.txt", "text/plain; charset=utf-8", "Text", Document);
        check("data.csv", "text/csv", "CSV table", Document);
    }

    #[test]
    fn the_name_never_overrides_what_the_bytes_are() {
        use TypeFamily::*;
        check("report.docx", "image/png", "PNG image", Image);
        check(
            "invoice.pdf",
            "application/octet-stream",
            "Binary file",
            Other,
        );
        check("page.txt", "text/html", "HTML page", Document);
        check(
            "setup.docx",
            "application/x-msdownload",
            "Windows program",
            Other,
        );
    }

    #[test]
    fn sniffed_types_get_short_words() {
        use TypeFamily::*;
        check("a.pdf", "application/pdf", "PDF document", Document);
        check("a.jpg", "image/jpeg", "JPEG image", Image);
        check("a.svg", "image/svg+xml", "SVG image", Image);
        check("a.mp3", "audio/mpeg", "MPEG audio", Audio);
        check("a.mov", "video/quicktime", "QuickTime video", Video);
        check("a.mkv", "video/x-matroska", "Matroska video", Video);
        check("a.tar.gz", "application/gzip", "GZIP archive", Archive);
        check(
            "a.7z",
            "application/x-7z-compressed",
            "7-Zip archive",
            Archive,
        );
        check("a", "", "Binary file", Other);
        check(
            "a.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "Word document",
            Document,
        );
    }

    #[test]
    fn families_round_trip() {
        for family in TypeFamily::ALL {
            assert_eq!(TypeFamily::parse(family.as_str()), Some(family));
        }
        assert_eq!(TypeFamily::parse("Image"), None);
        assert_eq!(TypeFamily::parse(""), None);
    }
}
