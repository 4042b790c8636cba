//! One line per answered request at `info` under the `private_media::access` target:
//! `CLIENT "METHOD PATH VERSION" STATUS BYTES_SENT DURATIONms`, written when the answer's
//! last byte has gone (or the client went away), so the bytes and the time are what was
//! really sent. The client is the one `[server] trusted_proxies` lets us believe.
//!
//! Ours rather than actix-web's `Logger`: its body wrapper hides a file body's sendfile(2)
//! path (`delivery/body.rs`), so with the log on every big download went through user
//! space. This wrapper passes it on, and counts the bytes either way.

use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web::Bytes;

use crate::client_addr::{TrustedProxies, client_address};

/// The target the lines are logged under (`PRIVATE_MEDIA_LOG=private_media::access=off`
/// silences them).
pub const TARGET: &str = "private_media::access";

/// Whether the access log is on at the current filter: when it is off, the middleware is not
/// set up at all (it would still cost a formatted request line per request).
pub fn enabled() -> bool {
    tracing::enabled!(target: TARGET, tracing::Level::INFO)
}

/// The middleware (`from_fn`): wraps each answer's body in one that logs when it ends.
pub async fn record(
    trusted: Arc<TrustedProxies>,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let peer = req.peer_addr().map(|a| a.ip());
    let client = client_address(peer, req.headers(), &trusted).map(|c| c.ip());
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path(), |p| p.as_str());
    let line = RequestLine {
        method: req.method().to_string(),
        target: loggable_target(target),
        version: req.version(),
    };
    let response = next.call(req).await?;
    let status = response.status().as_u16();
    Ok(response.map_body(move |_, body| LoggedBody {
        body,
        entry: Some(Entry {
            client,
            line,
            status,
            started,
            sent: 0,
        }),
    }))
}

/// Longest request target logged whole; a longer one is cut (the client chose its length).
const MAX_LOGGED_TARGET: usize = 1024;

/// The request target as it goes in the quoted field: `"` and `\` percent-encoded so the
/// field cannot be closed early (actix refuses control characters and non-ASCII bytes
/// before any handler runs, but says nothing about quotes), and cut at `MAX_LOGGED_TARGET`.
fn loggable_target(target: &str) -> String {
    let redacted = redact_share_token(target);
    let target = redacted.as_deref().unwrap_or(target);
    let mut logged = String::with_capacity(target.len().min(MAX_LOGGED_TARGET) + 3);
    for c in target.chars() {
        if logged.len() >= MAX_LOGGED_TARGET {
            logged.push('…');
            break;
        }
        match c {
            '"' => logged.push_str("%22"),
            '\\' => logged.push_str("%5C"),
            c if c.is_control() => {
                let mut bytes = [0u8; 4];
                for byte in c.encode_utf8(&mut bytes).bytes() {
                    let _ = write!(logged, "%{byte:02X}");
                }
            }
            c => logged.push(c),
        }
    }
    logged
}

/// Characters of a share link's token the log keeps: enough to tell links apart when reading
/// a log, far too few to open one (the token is 43).
const LOGGED_TOKEN_CHARS: usize = 6;
const TOKEN_CHARS: usize = 43;
/// An API token (`domain::ApiToken`): `pm_` and 43 token characters. The API takes it only
/// in a header, but a script may put one in a URL by mistake.
const API_TOKEN_CHARS: usize = 46;

/// Whether a run of token characters is shaped like a share link's or an API token.
fn is_secret_run(run: &[u8]) -> bool {
    run.len() == TOKEN_CHARS || (run.len() == API_TOKEN_CHARS && run.starts_with(b"pm_"))
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// The target with every run of exactly 43 token characters (a share link's token, however
/// the path spells it: `/s/…`, `/%73/…`, `//s/…`), and every API token, cut to its first
/// characters, looked for in the percent-decoded target too; `None` when there is none.
/// Whoever reads the log must not be able to open a link or use a token.
fn redact_share_token(target: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(target).decode_utf8_lossy();
    let text: &str = if decoded.as_ref() != target && has_token(decoded.as_bytes()) {
        decoded.as_ref()
    } else if has_token(target.as_bytes()) {
        target
    } else {
        return None;
    };
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let run = bytes[i..].iter().take_while(|b| is_token_char(**b)).count();
        if run == 0 {
            // Not a token character: copy one character (it may be more than a byte).
            let c = text[i..].chars().next().unwrap_or('\u{fffd}');
            out.push(c);
            i += c.len_utf8().max(1);
            continue;
        }
        if is_secret_run(&bytes[i..i + run]) {
            out.push_str(&text[i..i + LOGGED_TOKEN_CHARS]);
            out.push('…');
        } else {
            out.push_str(&text[i..i + run]);
        }
        i += run;
    }
    Some(out)
}

fn has_token(bytes: &[u8]) -> bool {
    bytes.split(|b| !is_token_char(*b)).any(is_secret_run)
}

struct RequestLine {
    method: String,
    target: String,
    version: actix_web::http::Version,
}

impl fmt::Display for RequestLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {:?}", self.method, self.target, self.version)
    }
}

struct Entry {
    client: Option<IpAddr>,
    line: RequestLine,
    status: u16,
    started: Instant,
    sent: u64,
}

impl Entry {
    fn write(&self) {
        let client: &dyn fmt::Display = match &self.client {
            Some(ip) => ip,
            None => &"-",
        };
        tracing::info!(
            target: TARGET,
            "{client} \"{}\" {} {} {:.3}ms",
            self.line,
            self.status,
            self.sent,
            self.started.elapsed().as_secs_f64() * 1000.0,
        );
    }
}

pin_project_lite::pin_project! {
    /// An answer's body that logs its request once it is dropped.
    pub struct LoggedBody<B> {
        #[pin]
        body: B,
        entry: Option<Entry>,
    }

    impl<B> PinnedDrop for LoggedBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(entry) = this.project().entry.take() {
                entry.write();
            }
        }
    }
}

impl<B: MessageBody> LoggedBody<B> {
    fn count(self: Pin<&mut Self>, bytes: u64) {
        if let Some(entry) = self.project().entry.as_mut() {
            entry.sent += bytes;
        }
    }
}

impl<B: MessageBody> MessageBody for LoggedBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let polled = self.as_mut().project().body.poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            self.count(chunk.len() as u64);
        }
        polled
    }

    fn writes_direct(&self) -> bool {
        self.body.writes_direct()
    }

    fn poll_write_direct(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<u64, Self::Error>>> {
        let polled = self.as_mut().project().body.poll_write_direct(cx);
        if let Poll::Ready(Some(Ok(written))) = &polled {
            self.count(*written);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_cannot_close_its_field_or_fill_the_log() {
        assert_eq!(loggable_target("/files?q=a b"), "/files?q=a b");
        assert_eq!(loggable_target("/a\"b\\c"), "/a%22b%5Cc");
        assert_eq!(loggable_target("/a\nb"), "/a%0Ab");
        let long = format!("/{}", "x".repeat(5000));
        let logged = loggable_target(&long);
        assert!(logged.len() <= MAX_LOGGED_TARGET + '…'.len_utf8());
        assert!(logged.ends_with('…'));
    }

    #[test]
    fn share_tokens_are_not_logged() {
        let token = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";
        assert_eq!(loggable_target(&format!("/s/{token}")), "/s/AbCdEf…");
        assert_eq!(
            loggable_target(&format!("/s/{token}/download?x=1")),
            "/s/AbCdEf…/download?x=1"
        );
        assert_eq!(loggable_target("/files/s/abc"), "/files/s/abc");
        for spelling in [
            format!("/%73/{token}"),
            format!("//s/{token}"),
            format!("/./s/{token}/download"),
            format!("/S/{token}"),
            format!("/s/%{:02X}{}", token.as_bytes()[0], &token[1..]),
        ] {
            let logged = loggable_target(&spelling);
            assert!(
                !logged.contains(&token[6..]),
                "{spelling} logged as {logged}"
            );
        }
        // An API token sent in a URL by mistake is cut the same way.
        let api = format!("pm_{token}");
        assert_eq!(
            loggable_target(&format!("/api/v1/files?token={api}")),
            "/api/v1/files?token=pm_AbC…"
        );
        // A file id (32 characters) is no token.
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            loggable_target(&format!("/files/{id}/download")),
            format!("/files/{id}/download")
        );
    }
}
