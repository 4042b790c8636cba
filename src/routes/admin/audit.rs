//! The audit log for superusers: a page of events, newest first, with filters, and the same
//! events as CSV. Paging is by keyset (`before` an id), never an offset, so the millionth
//! event's page costs what the first one's does.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::audit::csv;
use crate::audit::filter::{EVENT_KINDS, FilterInput};
use crate::auth::extractors::Superuser;
use crate::db::models::audit_event::{AuditEvent, EventFilter, EventRow};
use crate::display::filters; // `shown`, for the templates below (src/display.rs)
use crate::error::AppError;
use crate::html::{self, Nav};
use crate::state::AppState;

/// Events on a page.
const PAGE: i64 = 50;
/// Characters of a user agent the table shows; the whole one is in the cell's title.
const AGENT_CHARS: usize = 40;

#[derive(Debug, Deserialize)]
pub struct AuditParams {
    file: Option<String>,
    user: Option<String>,
    event: Option<String>,
    from: Option<String>,
    to: Option<String>,
    before: Option<String>,
}

impl AuditParams {
    fn input(&self) -> FilterInput {
        FilterInput {
            file: self.file.clone(),
            user: self.user.clone(),
            event: self.event.clone(),
            from: self.from.clone(),
            to: self.to.clone(),
        }
        .cleaned()
    }
}

/// An event as the tables show it (the audit page, a file's page).
pub struct EventView {
    pub id: i64,
    pub at: String,
    pub event: String,
    pub who: String,
    pub file_id: Option<String>,
    pub file_name: String,
    pub outcome: String,
    pub route: String,
    pub delivery: String,
    pub method: String,
    pub range: String,
    pub client: String,
    pub user_agent: String,
    pub user_agent_short: String,
    pub detail: String,
}

impl From<&EventRow> for EventView {
    fn from(e: &EventRow) -> Self {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        let who = match (&e.username, &e.link_id) {
            (Some(name), _) => name.clone(),
            (None, Some(link)) => format!("link {}", link.chars().take(8).collect::<String>()),
            (None, None) => String::new(),
        };
        let outcome = match (&e.outcome, e.status) {
            (Some(o), Some(s)) => format!("{o} {s}"),
            (Some(o), None) => o.clone(),
            (None, Some(s)) => s.to_string(),
            (None, None) => String::new(),
        };
        let user_agent = text(&e.user_agent);
        let user_agent_short = if user_agent.chars().count() > AGENT_CHARS {
            let mut short: String = user_agent.chars().take(AGENT_CHARS).collect();
            short.push('…');
            short
        } else {
            user_agent.clone()
        };
        Self {
            id: e.id,
            at: e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            event: e.event.clone(),
            who,
            file_id: e.file_id.clone(),
            file_name: e
                .file_name
                .clone()
                .or_else(|| e.storage_key.clone())
                .unwrap_or_default(),
            outcome,
            route: text(&e.route),
            delivery: text(&e.delivery),
            method: text(&e.method),
            range: text(&e.byte_range),
            client: text(&e.client),
            user_agent,
            user_agent_short,
            detail: text(&e.detail),
        }
    }
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    error: Option<String>,
    form: FilterInput,
    kinds: &'static [&'static str],
    events: Vec<EventView>,
    /// The page's newest events, with the filters (shown when this is an older page).
    newest_url: Option<String>,
    older_url: Option<String>,
    csv_url: String,
    show_event_file: bool,
}

/// `?file=…&user=…` of the filters given, percent-encoded; empty when there are none.
fn query(input: &FilterInput) -> String {
    let parts = [
        ("file", &input.file),
        ("user", &input.user),
        ("event", &input.event),
        ("from", &input.from),
        ("to", &input.to),
    ];
    let encoded: Vec<String> = parts
        .iter()
        .filter_map(|(name, value)| {
            value.as_ref().map(|v| {
                format!(
                    "{name}={}",
                    percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                )
            })
        })
        .collect();
    encoded.join("&")
}

fn url(path: &str, query: &str, before: Option<i64>) -> String {
    match (query.is_empty(), before) {
        (true, None) => path.to_owned(),
        (true, Some(id)) => format!("{path}?before={id}"),
        (false, None) => format!("{path}?{query}"),
        (false, Some(id)) => format!("{path}?{query}&before={id}"),
    }
}

fn before(params: &AuditParams) -> Result<Option<i64>, String> {
    match params
        .before
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        None => Ok(None),
        Some(raw) => raw
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(Some)
            .ok_or_else(|| format!("`before` must be an event number, not “{raw}”")),
    }
}

pub async fn page(
    Superuser(current): Superuser,
    params: web::Query<AuditParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let form = params.input();
    let query = query(&form);
    let mut page = AuditPage {
        nav: Some(Nav::from(&current)),
        error: None,
        form: form.clone(),
        kinds: &EVENT_KINDS,
        events: Vec::new(),
        newest_url: None,
        older_url: None,
        csv_url: url("/admin/audit.csv", &query, None),
        show_event_file: true,
    };
    let parsed = form
        .parse()
        .map_err(|e| e.to_string())
        .and_then(|filter| Ok((filter, before(&params)?)));
    let (filter, before) = match parsed {
        Ok(parsed) => parsed,
        Err(message) => {
            page.error = Some(message);
            return html::render(StatusCode::BAD_REQUEST, &page);
        }
    };
    // One more than shown, to know whether an older page exists.
    let mut rows = state
        .audit_db
        .read(move |c| AuditEvent::page(c, &filter, before, PAGE + 1))
        .await?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    page.events = rows.iter().map(EventView::from).collect();
    page.newest_url = before.map(|_| url("/admin/audit", &query, None));
    page.older_url = rows
        .last()
        .filter(|_| more)
        .map(|last| url("/admin/audit", &query, Some(last.id)));
    html::page(&page)
}

pub async fn csv(
    Superuser(_): Superuser,
    params: web::Query<AuditParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let filter: EventFilter = params
        .input()
        .parse()
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let body = futures_util::TryStreamExt::inspect_err(
        csv::stream(state.audit_db.clone(), filter),
        // The status line has gone out: the connection is cut, and only the log says why.
        |e| tracing::error!(error = %e, "the audit CSV stopped"),
    );
    Ok(HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/csv; charset=utf-8"),
        ))
        .insert_header((
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"audit.csv\""),
        ))
        .streaming(body))
}

/// A file's latest events and how often it was downloaded, for its admin page.
pub async fn of_file(
    state: &AppState,
    file_id: &str,
    latest: i64,
) -> Result<(i64, Vec<EventView>), AppError> {
    let id = file_id.to_owned();
    let (count, rows) = state
        .audit_db
        .read(move |c| {
            let filter = EventFilter {
                file_id: Some(id.clone()),
                ..EventFilter::default()
            };
            Ok((
                AuditEvent::downloads_of_file(c, &id)?,
                AuditEvent::page(c, &filter, None, latest)?,
            ))
        })
        .await?;
    Ok((count, rows.iter().map(EventView::from).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_filters_and_add_the_keyset() {
        let input = FilterInput {
            user: Some("anna b".into()),
            event: Some("download".into()),
            ..FilterInput::default()
        };
        let q = query(&input);
        assert_eq!(q, "user=anna%20b&event=download");
        assert_eq!(
            url("/admin/audit", &q, Some(42)),
            "/admin/audit?user=anna%20b&event=download&before=42"
        );
        assert_eq!(url("/admin/audit", "", Some(42)), "/admin/audit?before=42");
        assert_eq!(url("/admin/audit", "", None), "/admin/audit");
    }
}
