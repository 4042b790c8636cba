//! Receiving one uploaded file: stream it into a pending storage upload while
//! counting its size, hashing it and sniffing its type from the first bytes. A file that
//! passes the size limit is cut off at once, one whose sniffed type is not allowed is
//! refused, an empty one too; a refused file's pending upload is discarded, so it leaves
//! nothing behind.

use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};

use crate::config::{ContentTypePattern, UploadSettings};
use crate::storage::{PendingUpload, Storage, StorageError};

use super::hashing::{HashError, Hasher};
use super::{Refusal, human_size};

/// How many leading bytes the type sniffer sees.
const SNIFF_BYTES: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    /// The client's request broke off or was malformed.
    #[error("the upload broke off: {0}")]
    Broken(String),
    /// A refused file kept coming long after its limit: stop reading the request.
    #[error("the upload is far larger than the limit of {}", human_size(*.0))]
    CutOff(u64),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// A file received in full and accepted; not visible until its pending upload is committed.
/// Its pending upload is finished (`PendingUpload::finish`): it holds no descriptor.
pub struct Received {
    pub pending: Box<dyn PendingUpload>,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
}

/// Reads `body` into a new pending upload on `storage`.
pub async fn receive<S, E>(
    body: &mut S,
    file_name: &str,
    storage: &dyn Storage,
    policy: &UploadSettings,
) -> Result<Result<Received, Refusal>, ReceiveError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut pending = storage.start_upload().await?;
    let mut size: u64 = 0;
    let mut hasher = Hasher::new();
    let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
    let mut content_type: Option<String> = None;

    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ReceiveError::Broken(e.to_string()))?;
        size += chunk.len() as u64;
        if size > policy.max_file_size {
            pending.abort().await;
            skip_rest(body, policy.max_file_size).await?;
            return Ok(Err(Refusal::TooLarge {
                limit: policy.max_file_size,
            }));
        }
        if content_type.is_none() {
            let wanted = SNIFF_BYTES - head.len();
            head.extend_from_slice(&chunk[..wanted.min(chunk.len())]);
            if head.len() >= SNIFF_BYTES {
                let sniffed = sniff(&head, file_name);
                if let Some(refusal) = check_type(&sniffed, &policy.content_types) {
                    pending.abort().await;
                    skip_rest(body, policy.max_file_size).await?;
                    return Ok(Err(refusal));
                }
                content_type = Some(sniffed);
            }
        }
        hasher.update(&chunk).await?;
        pending.write(chunk).await?;
    }

    if size == 0 {
        pending.abort().await;
        return Ok(Err(Refusal::Empty));
    }
    let content_type = match content_type {
        Some(t) => t,
        None => {
            let sniffed = sniff(&head, file_name);
            if let Some(refusal) = check_type(&sniffed, &policy.content_types) {
                pending.abort().await;
                return Ok(Err(refusal));
            }
            sniffed
        }
    };
    // Whole and accepted: it waits for the rest of the request holding no descriptor and no
    // buffer, however many files come after it.
    pending.finish().await?;
    let sha256 = hasher.finish().await?;
    Ok(Ok(Received {
        pending,
        size,
        sha256,
        content_type,
    }))
}

/// Reads and drops the rest of a refused file, so the next part of the request can be read;
/// gives up (and so ends the request) once that would mean reading more than `budget` bytes.
async fn skip_rest<S, E>(body: &mut S, budget: u64) -> Result<(), ReceiveError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut skipped: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ReceiveError::Broken(e.to_string()))?;
        skipped += chunk.len() as u64;
        if skipped > budget.max(1024 * 1024) {
            return Err(ReceiveError::CutOff(budget));
        }
    }
    Ok(())
}

fn check_type(sniffed: &str, allowed: &[ContentTypePattern]) -> Option<Refusal> {
    if allowed.is_empty() || allowed.iter().any(|p| p.matches(sniffed)) {
        return None;
    }
    Some(Refusal::Type {
        found: sniffed.to_owned(),
        allowed: allowed.iter().map(|p| p.as_str().to_owned()).collect(),
    })
}

/// The content type of a file from its first bytes; the name only refines plain text
/// (`.csv` → `text/csv`), it never makes binary or markup look harmless.
pub fn sniff(head: &[u8], file_name: &str) -> String {
    let text = match std::str::from_utf8(head) {
        Ok(text) => Some(text),
        // A multi-byte character cut at the end of the sniffed window is still text.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok(),
        Err(_) => None,
    }
    .filter(|t| !t.contains('\0'));
    // Markup first: it is what could run in a browser, whatever else it resembles.
    if let Some(markup) = text.and_then(sniff_markup) {
        return markup.to_owned();
    }
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    if text.is_none() {
        return mime::APPLICATION_OCTET_STREAM.to_string();
    }
    let guess = mime_guess::from_path(file_name).first();
    match guess {
        Some(g)
            if (g.type_() == mime::TEXT
                && g.subtype() != mime::HTML
                && g.subtype() != "xml"
                && g.subtype() != mime::JAVASCRIPT)
                || g.essence_str() == "application/json" =>
        {
            g.essence_str().to_owned()
        }
        _ => mime::TEXT_PLAIN.to_string(),
    }
}

fn sniff_markup(text: &str) -> Option<&'static str> {
    let start: String = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .chars()
        .take(1024)
        .collect::<String>()
        .to_ascii_lowercase();
    if [
        "<!doctype html",
        "<html",
        "<head",
        "<body",
        "<script",
        "<iframe",
    ]
    .iter()
    .any(|m| start.contains(m))
    {
        return Some("text/html");
    }
    if start.contains("<svg") {
        return Some("image/svg+xml");
    }
    if start.starts_with("<?xml") {
        return Some("application/xml");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_trusts_bytes_not_names() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0";
        assert_eq!(sniff(png, "x.txt"), "image/png");
        assert_eq!(sniff(b"<!DOCTYPE html><p>hi", "cat.png"), "text/html");
        assert_eq!(sniff(b"  <script>alert(1)</script>", "a.jpg"), "text/html");
        assert_eq!(
            sniff(b"<?xml version='1.0'?><svg xmlns=''/>", "a.png"),
            "image/svg+xml"
        );
        assert_eq!(
            sniff(b"<?xml version='1.0'?><a/>", "a.png"),
            "application/xml"
        );
        assert_eq!(sniff(b"hello", "notes.txt"), "text/plain");
        assert_eq!(sniff(b"a,b\n1,2", "data.csv"), "text/csv");
        assert_eq!(sniff(b"hello", "page.html"), "text/plain");
        assert_eq!(sniff(b"hello", "x.png"), "text/plain");
        assert_eq!(
            sniff(b"\0\x01\x02binary", "x.txt"),
            "application/octet-stream"
        );
        assert_eq!(sniff("Grüße".as_bytes(), "a.txt"), "text/plain");
        assert_eq!(sniff(&"é".as_bytes()[..1], "a.txt"), "text/plain");
        assert_eq!(sniff(b"%PDF-1.7\n", "a.bin"), "application/pdf");
    }
}
