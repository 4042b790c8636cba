//! The body of large file responses: 1 MiB positioned reads on the blocking pool. NamedFile's
//! own reader uses 64 KiB reads, one pool hop each, which caps a big download near 1.1 GB/s
//! on these machines; 1 MiB reads reach the socket's speed with memory still flat (one chunk
//! in flight per response). PERFORMANCE.md has the measurements.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use actix_web::HttpResponse;
use actix_web::body::{BodySize, MessageBody, SizedStream};
use actix_web::http::header;
use actix_web::web::Bytes;
use futures_util::{Stream, stream};
use std::pin::Pin;

const CHUNK: u64 = 1024 * 1024;

pub type FileChunks = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>>>>;

/// Where the body of a 200 or 206 answer starts in the file and how long it is.
pub fn span_of(response: &HttpResponse) -> Option<(u64, u64)> {
    if let Some(range) = response.headers().get(header::CONTENT_RANGE) {
        // NamedFile writes `bytes START-END/TOTAL`.
        let spec = range.to_str().ok()?.strip_prefix("bytes ")?;
        let (span, _) = spec.split_once('/')?;
        let (start, end) = span.split_once('-')?;
        let (start, end): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
        return (end >= start).then(|| (start, end - start + 1));
    }
    match response.body().size() {
        BodySize::Sized(length) => Some((0, length)),
        _ => None,
    }
}

/// `length` bytes of `file` from `offset`: up to 1 MiB in one synchronous read (cheaper than a
/// hop to the blocking pool when the page cache has it), more in 1 MiB chunks read on the
/// blocking pool.
pub fn sized_file_body(file: File, offset: u64, length: u64) -> SizedStream<FileChunks> {
    if length <= CHUNK {
        let once = stream::once(async move { read_exact_at(&file, offset, length) });
        return SizedStream::new(length, Box::pin(once));
    }
    let file = Arc::new(file);
    let chunks = stream::unfold((offset, length), move |(position, remaining)| {
        let file = Arc::clone(&file);
        async move {
            if remaining == 0 {
                return None;
            }
            let want = remaining.min(CHUNK);
            let read = tokio::task::spawn_blocking(move || read_exact_at(&file, position, want))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r);
            match read {
                Ok(bytes) => {
                    let n = bytes.len() as u64;
                    Some((Ok(bytes), (position + n, remaining - n)))
                }
                // End the stream after the error: the client sees a cut-off body.
                Err(e) => Some((Err(e), (position, 0))),
            }
        }
    });
    SizedStream::new(length, Box::pin(chunks))
}

fn read_exact_at(file: &File, position: u64, want: u64) -> std::io::Result<Bytes> {
    let mut buffer = vec![0u8; want as usize];
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], position + filled as u64) {
            Ok(0) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file became shorter while it was sent",
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Bytes::from(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn reads_exactly_the_span() {
        let mut tmp = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        tmp.write_all(&data).unwrap();
        let offset = CHUNK - 5;
        let length = CHUNK * 2 + 9;
        let body = sized_file_body(tmp, offset, length);
        assert_eq!(body.size(), BodySize::Sized(length));
        let read = actix_web::body::to_bytes(body).await.unwrap();
        assert_eq!(read, &data[offset as usize..(offset + length) as usize]);
    }

    #[tokio::test]
    async fn a_file_that_shrinks_ends_the_stream_with_an_error() {
        let mut tmp = tempfile::tempfile().unwrap();
        tmp.write_all(&[1u8; 100]).unwrap();
        let body = sized_file_body(tmp, 0, 200);
        assert!(actix_web::body::to_bytes(body).await.is_err());
    }
}
