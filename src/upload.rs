//! Receiving one uploaded file (SPEC 7): stream it into a pending storage upload while
//! counting its size, hashing it and sniffing its type from the first bytes. A file that
//! passes the size limit is cut off at once, one whose sniffed type is not allowed is
//! refused, an empty one too; a refused file's pending upload is discarded, so it leaves
//! nothing behind.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use crate::config::{ContentTypePattern, UploadSettings};
use crate::storage::{PendingUpload, Storage, StorageError};

/// How many leading bytes the type sniffer sees.
const SNIFF_BYTES: usize = 8 * 1024;

/// Why a file was refused, in words for the person who uploaded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooLarge { limit: u64 },
    Type { found: String, allowed: Vec<String> },
    Empty,
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Type { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Refusal::Empty => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    pub fn reason(&self) -> String {
        match self {
            Refusal::TooLarge { limit } => {
                format!("too large: the limit is {}", human_size(*limit))
            }
            Refusal::Type { found, allowed } => format!(
                "files of type {found} are not allowed (allowed: {})",
                allowed.join(", ")
            ),
            Refusal::Empty => "the file is empty".to_owned(),
        }
    }
}

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
}

/// A file received in full and accepted; not visible until its pending upload is committed.
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
    let mut hasher = Sha256::new();
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
        hasher.update(&chunk);
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
    Ok(Ok(Received {
        pending,
        size,
        sha256: hex::encode(hasher.finalize()),
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

/// `1.5 MiB`-style sizes for people.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() < 0.05 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Whether the object at `key` is the one an interrupted upload meant to put there (same
/// size and SHA-256): anything else there is someone else's and stays.
async fn is_the_uploaded_object(
    storage: &dyn Storage,
    key: &crate::domain::StorageKey,
    size: i64,
    sha256: &str,
) -> bool {
    match storage.metadata(key).await {
        Ok(meta) if i64::try_from(meta.size).ok() == Some(size) => {}
        _ => return false,
    }
    let Ok(mut stream) = storage.open(key, None).await else {
        return false;
    };
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) => hasher.update(&chunk),
            Err(_) => return false,
        }
    }
    hex::encode(hasher.finalize()) == sha256
}

/// Removes what uploads cut short by a crash left between "object committed" and "row
/// written": for every reserved key whose upload was abandoned (its instance is gone), the
/// object if it exists, then the reservation. Returns how many went. Failures are logged
/// and left for the next start.
pub async fn reconcile_interrupted(
    db: &crate::db::Db,
    storages: &crate::storage::Storages,
) -> usize {
    use crate::db::models::pending_upload::PendingKey;
    let pending = match db.run(PendingKey::all).await {
        Ok(pending) => pending,
        Err(e) => {
            tracing::warn!(error = %e, "could not list interrupted uploads");
            return 0;
        }
    };
    let mut removed = 0;
    for entry in pending {
        let Some(storage) = storages.get(&entry.storage) else {
            tracing::warn!(storage = %entry.storage, key = %entry.storage_key, "an interrupted upload names a storage that is not configured");
            continue;
        };
        let started = std::time::SystemTime::from(entry.started_at.and_utc());
        if !storage.upload_abandoned(&entry.instance, started) {
            continue;
        }
        let (name, key) = (entry.storage.clone(), entry.storage_key.clone());
        let has_row = db
            .run(move |c| crate::db::models::file::FileRow::find_by_key(c, &name, &key))
            .await
            .map(|row| row.is_some());
        // An object a row holds is never removed, whatever the journal says.
        let has_row = match has_row {
            Ok(has_row) => has_row,
            Err(e) => {
                tracing::warn!(error = %e, "could not check an interrupted upload's key");
                continue;
            }
        };
        let key = &entry.storage_key;
        if !has_row
            && is_the_uploaded_object(storage.as_ref(), key, entry.size, &entry.sha256).await
        {
            match storage.delete(key).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    tracing::warn!(key = %key, error = %e, "could not remove an interrupted upload's object");
                    continue;
                }
            }
        }
        let (name, key) = (entry.storage.clone(), entry.storage_key.clone());
        match db.run(move |c| PendingKey::release(c, &name, &key)).await {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::warn!(key = %entry.storage_key, error = %e, "could not release an interrupted upload's key")
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed uploads interrupted by a crash");
    }
    removed
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

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(0), "0 bytes");
        assert_eq!(human_size(1023), "1023 bytes");
        assert_eq!(human_size(1024), "1 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(100 * 1024 * 1024), "100 MiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024), "5 GiB");
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(
            Refusal::TooLarge { limit: 1024 * 1024 }.reason(),
            "too large: the limit is 1 MiB"
        );
        let r = Refusal::Type {
            found: "text/html".into(),
            allowed: vec!["image/*".into()],
        };
        assert!(r.reason().contains("text/html"));
        assert!(r.reason().contains("image/*"));
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
