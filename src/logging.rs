//! Where logs go and how loud they are: one line per event on stderr, filtered by
//! `PRIVATE_MEDIA_LOG`. Only server faults are errors (README: *Command line*). A filter that
//! does not parse is an error rather than a silent fall back to the default, which would hide
//! the logs that were asked for.
//!
//! actix-http logs a client's broken request at `error` ("stream error: request parse error:
//! invalid Header provided", a reset connection, a slow client, a body left unread because we
//! refused it) before the app sees anything. Those are the client's mistakes, so `Demote`
//! turns exactly those events into warnings; every other error of actix-http stays an error.

use std::fmt::Write as _;
use std::io::IsTerminal;

use tracing::field::{Field, FieldSet, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::metadata::Kind;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

pub const LOG_VAR: &str = "PRIVATE_MEDIA_LOG";

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(
        "{LOG_VAR}: `{value}` is not a log filter ({problem}); use e.g. `debug` or `private_media=debug,actix_web=info`"
    )]
    Invalid { value: String, problem: String },
    #[error("{LOG_VAR} is not valid UTF-8")]
    NotUnicode,
}

/// The filter from `PRIVATE_MEDIA_LOG`, or `default_level` when it is unset or empty.
pub fn filter(default_level: &str) -> Result<EnvFilter, LogError> {
    let value = match std::env::var(LOG_VAR) {
        Ok(value) if !value.trim().is_empty() => value,
        Ok(_) | Err(std::env::VarError::NotPresent) => return Ok(EnvFilter::new(default_level)),
        Err(std::env::VarError::NotUnicode(_)) => return Err(LogError::NotUnicode),
    };
    parse(&value)
}

fn parse(value: &str) -> Result<EnvFilter, LogError> {
    EnvFilter::builder()
        .parse(value)
        .map_err(|e| LogError::Invalid {
            value: value.to_owned(),
            problem: e.to_string(),
        })
}

/// Installs the subscriber; logs go to stderr, in colour only on a terminal.
pub fn init(filter: EnvFilter) {
    let format = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    tracing_subscriber::registry()
        .with(filter)
        .with(Demote(format))
        .init();
}

/// Text someone else chose (a typed username, a request path, an error that quotes either) as
/// a log field: control characters, line and paragraph separators and bidi controls are
/// escaped (`\n`, `\u{1b}`), and so is `\`, so such text can neither start a log line of its
/// own nor send a terminal escape sequence, and an escape it types is told from a real one.
pub struct Escaped<T>(pub T);

impl<T: std::fmt::Display> std::fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Escaping<'a, 'b>(&'a mut std::fmt::Formatter<'b>);
        impl std::fmt::Write for Escaping<'_, '_> {
            fn write_str(&mut self, text: &str) -> std::fmt::Result {
                for c in text.chars() {
                    if needs_escape(c) {
                        write!(self.0, "{}", c.escape_default())?;
                    } else {
                        self.0.write_char(c)?;
                    }
                }
                Ok(())
            }
        }
        write!(Escaping(f), "{}", self.0)
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\\' | '\u{2028}' | '\u{2029}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// The beginnings of actix-http's error messages that a client causes.
const CLIENT_MISTAKES: &[&str] = &[
    "stream error: request parse error",
    "stream error: I/O error",
    "stream error: request did not complete within the specified timeout",
    "stream error: connection shutdown timeout",
    "stream error: handler dropped payload before reading EOF",
    "MAX_BUFFER_SIZE unprocessed data reached",
];

/// A download the watchdog ended because its client took nothing (delivery/body.rs): actix
/// reports it as a failed response body.
const STALLED_DOWNLOAD: (&str, &str) = (
    "Response payload stream error",
    "the client stopped reading",
);

fn is_client_mistake(target: &str, message: &str) -> bool {
    target.starts_with("actix_http::h1")
        && (CLIENT_MISTAKES.iter().any(|m| message.starts_with(m))
            || (message.starts_with(STALLED_DOWNLOAD.0) && message.contains(STALLED_DOWNLOAD.1)))
}

struct DemotedCallsite;

impl Callsite for DemotedCallsite {
    fn set_interest(&self, _: Interest) {}
    fn metadata(&self) -> &Metadata<'_> {
        &DEMOTED
    }
}

static DEMOTED_CALLSITE: DemotedCallsite = DemotedCallsite;
static DEMOTED: Metadata<'static> = Metadata::new(
    "client mistake",
    "actix_http",
    Level::WARN,
    None,
    None,
    None,
    FieldSet::new(&["message"], Identifier(&DEMOTED_CALLSITE)),
    Kind::EVENT,
);

/// The text of an event's fields, `message` first as the fmt layer shows it.
#[derive(Default)]
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
}

/// Wraps the layer that writes the log; hands it client mistakes of actix-http as warnings.
pub struct Demote<L>(pub L);

impl<S: Subscriber, L: Layer<S>> Layer<S> for Demote<L> {
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if *metadata.level() != Level::ERROR || !metadata.target().starts_with("actix_http") {
            return self.0.on_event(event, ctx);
        }
        let mut message = Message::default();
        event.record(&mut message);
        if !is_client_mistake(metadata.target(), &message.0) {
            return self.0.on_event(event, ctx);
        }
        if !ctx.enabled(&DEMOTED) {
            return;
        }
        let fields = DEMOTED.fields();
        let Some(field) = fields.field("message") else {
            return;
        };
        let text = format_args!("{}", message.0);
        let values = [(&field, Some(&text as &dyn tracing::Value))];
        let values = fields.value_set(&values);
        self.0.on_event(&Event::new(&DEMOTED, &values), ctx);
    }

    // Everything else goes to the wrapped layer as it is.
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        self.0.register_callsite(metadata)
    }
    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.0.enabled(metadata, ctx)
    }
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.0.on_new_span(attrs, id, ctx)
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.0.on_record(id, values, ctx)
    }
    fn on_follows_from(&self, span: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.0.on_follows_from(span, follows, ctx)
    }
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.0.on_enter(id, ctx)
    }
    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.0.on_exit(id, ctx)
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.0.on_close(id, ctx)
    }
    fn on_id_change(&self, old: &Id, new: &Id, ctx: Context<'_, S>) {
        self.0.on_id_change(old, new, ctx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn escaped_text_stays_on_one_line_without_escape_sequences() {
        let typed = "zz\n2026-12-03 INFO logged in\r\x1b[31m\u{202E}\u{2028}a\\nb é";
        let shown = Escaped(typed).to_string();
        assert_eq!(
            shown,
            "zz\\n2026-12-03 INFO logged in\\r\\u{1b}[31m\\u{202e}\\u{2028}a\\\\nb é"
        );
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert_eq!(
            Escaped("plain-name_1@x.org").to_string(),
            "plain-name_1@x.org"
        );
    }

    /// Keeps the level and text of every event it is handed.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<(Level, String)>>>);

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            let mut message = Message::default();
            event.record(&mut message);
            if let Ok(mut seen) = self.0.lock() {
                seen.push((*event.metadata().level(), message.0));
            }
        }
    }

    fn logged(emit: impl FnOnce()) -> Vec<(Level, String)> {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(Demote(capture.clone()));
        tracing::subscriber::with_default(subscriber, emit);
        capture.0.lock().expect("capture").clone()
    }

    #[test]
    fn a_malformed_request_is_a_warning_not_an_error() {
        let seen = logged(|| {
            tracing::error!(
                target: "actix_http::h1::dispatcher",
                "stream error: request parse error: invalid Header provided"
            );
            tracing::error!(target: "actix_http::h1::decoder", "MAX_BUFFER_SIZE unprocessed data reached, closing");
            tracing::error!(
                target: "actix_http::h1::dispatcher",
                "Response payload stream error: Error {{ kind: Body, cause: Some(Custom {{ kind: TimedOut, error: \"the client stopped reading\" }}) }}"
            );
        });
        assert_eq!(
            seen,
            vec![
                (
                    Level::WARN,
                    "stream error: request parse error: invalid Header provided".to_owned()
                ),
                (
                    Level::WARN,
                    "MAX_BUFFER_SIZE unprocessed data reached, closing".to_owned()
                ),
                (
                    Level::WARN,
                    "Response payload stream error: Error { kind: Body, cause: Some(Custom { kind: TimedOut, error: \"the client stopped reading\" }) }".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn server_faults_stay_errors() {
        let seen = logged(|| {
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: body error: disk");
            tracing::error!(
                target: "actix_http::h1::dispatcher",
                "Response payload stream error: the file became shorter while it was sent"
            );
            tracing::error!(target: "private_media::error", "request failed");
            tracing::info!(target: "actix_http::h1::dispatcher", "stream error: request parse error");
        });
        let levels: Vec<Level> = seen.iter().map(|(level, _)| *level).collect();
        assert_eq!(
            levels,
            vec![Level::ERROR, Level::ERROR, Level::ERROR, Level::INFO]
        );
    }

    #[test]
    fn good_filters_parse() {
        for good in ["debug", "private_media=debug,actix_web=info", "warn"] {
            assert!(parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn bad_filters_are_errors_that_name_the_variable() {
        for bad in ["private_media=loud", "debug,=x[", "[{"] {
            let err = parse(bad).expect_err(bad).to_string();
            assert!(err.starts_with("PRIVATE_MEDIA_LOG: "), "{err}");
        }
    }
}
