//! The audit log as CSV, for `/admin/audit.csv` and `audit export`: RFC 4180 (quoted only
//! where a cell needs it, CRLF line ends) and safe to open in a spreadsheet. A user agent, a
//! file name or a username is text a client chose, and a spreadsheet runs a cell that starts
//! with `=`, `+`, `-` or `@` (or a tab or CR before one) as a formula, so such a cell gets a
//! leading `'` and is shown as the text it was.
//!
//! Both read the log a page at a time by keyset, newest first, so memory stays the same for a
//! million events as for ten, and no connection is held while the bytes wait for the client.

use std::io::Write;

use bytes::Bytes;
use futures_util::Stream;

use crate::db::models::audit_event::{AuditEvent, EventFilter, EventRow};
use crate::db::{Db, DbError};

/// Events read per trip to the database.
pub const PAGE: i64 = 1000;

const COLUMNS: [&str; 18] = [
    "id",
    "time_utc",
    "event",
    "outcome",
    "status",
    "route",
    "delivery",
    "method",
    "range",
    "user_id",
    "username",
    "link_id",
    "file_id",
    "file_name",
    "storage_key",
    "client",
    "user_agent",
    "detail",
];

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot write the CSV: {0}")]
    Write(#[from] std::io::Error),
}

/// One cell, neutralised and quoted as it needs.
fn cell(out: &mut Vec<u8>, value: &str) {
    let formula = value
        .chars()
        .next()
        .is_some_and(|c| matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r'));
    let quoted = value.contains([',', '"', '\n', '\r']);
    if quoted {
        out.push(b'"');
    }
    if formula {
        out.push(b'\'');
    }
    if quoted {
        out.extend_from_slice(value.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(value.as_bytes());
    }
}

fn line<'a>(out: &mut Vec<u8>, cells: impl IntoIterator<Item = &'a str>) {
    for (i, value) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        cell(out, value);
    }
    out.extend_from_slice(b"\r\n");
}

pub fn header(out: &mut Vec<u8>) {
    line(out, COLUMNS);
}

pub fn row(out: &mut Vec<u8>, event: &EventRow) {
    let id = event.id.to_string();
    let at = event.at.format("%Y-%m-%d %H:%M:%S").to_string();
    let status = event.status.map(|s| s.to_string());
    fn text(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or("")
    }
    line(
        out,
        [
            id.as_str(),
            at.as_str(),
            event.event.as_str(),
            text(&event.outcome),
            status.as_deref().unwrap_or(""),
            text(&event.route),
            text(&event.delivery),
            text(&event.method),
            text(&event.byte_range),
            text(&event.user_id),
            text(&event.username),
            text(&event.link_id),
            text(&event.file_id),
            text(&event.file_name),
            text(&event.storage_key),
            text(&event.client),
            text(&event.user_agent),
            text(&event.detail),
        ],
    );
}

/// One page's rows as CSV, and where the next page starts (`None`: this was the last).
fn page_bytes(rows: &[EventRow], out: &mut Vec<u8>) -> Option<i64> {
    for event in rows {
        row(out, event);
    }
    let full = i64::try_from(rows.len()).is_ok_and(|n| n >= PAGE);
    rows.last().filter(|_| full).map(|last| last.id)
}

enum Next {
    First,
    Before(i64),
    Done,
}

/// The CSV of the events `filter` matches, the header first, read from `db` (the audit
/// database) one page per chunk on the blocking pool.
pub fn stream(db: Db, filter: EventFilter) -> impl Stream<Item = Result<Bytes, DbError>> {
    futures_util::stream::try_unfold(Next::First, move |next| {
        let db = db.clone();
        let filter = filter.clone();
        async move {
            let before = match next {
                Next::Done => return Ok(None),
                Next::First => None,
                Next::Before(id) => Some(id),
            };
            let rows = db
                .read(move |c| AuditEvent::page(c, &filter, before, PAGE))
                .await?;
            let mut out = Vec::new();
            if before.is_none() {
                header(&mut out);
            }
            let next = match page_bytes(&rows, &mut out) {
                Some(id) => Next::Before(id),
                None => Next::Done,
            };
            if out.is_empty() {
                return Ok(None);
            }
            Ok(Some((Bytes::from(out), next)))
        }
    })
}

/// The same CSV written to `out` (the CLI's stdout), a page at a time; returns the number of
/// events written.
pub fn export(db: &Db, filter: &EventFilter, out: &mut impl Write) -> Result<u64, ExportError> {
    let mut buffer = Vec::new();
    header(&mut buffer);
    out.write_all(&buffer)?;
    let mut before = None;
    let mut written = 0;
    loop {
        // A connection per page, given back before the page is written out.
        let rows = AuditEvent::page(&mut *db.get()?, filter, before, PAGE)?;
        buffer.clear();
        written += rows.len() as u64;
        let next = page_bytes(&rows, &mut buffer);
        out.write_all(&buffer)?;
        match next {
            Some(id) => before = Some(id),
            None => break,
        }
    }
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(value: &str) -> String {
        let mut out = Vec::new();
        cell(&mut out, value);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn cells_are_quoted_only_when_they_need_it() {
        assert_eq!(one("plain.txt"), "plain.txt");
        assert_eq!(one(""), "");
        assert_eq!(one("a,b"), "\"a,b\"");
        assert_eq!(one("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(one("two\nlines"), "\"two\nlines\"");
        assert_eq!(one("cr\rhere"), "\"cr\rhere\"");
    }

    #[test]
    fn what_a_spreadsheet_would_run_starts_with_a_quote_mark() {
        assert_eq!(one("=1+1.txt"), "'=1+1.txt");
        assert_eq!(one("+1"), "'+1");
        assert_eq!(one("-2"), "'-2");
        assert_eq!(one("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(one("\t=x"), "'\t=x");
        assert_eq!(one("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        // Quoted and neutralised: the mark goes inside the quotes, where it is part of the text.
        assert_eq!(one("\r=a,b"), "\"'\r=a,b\"");
        assert_eq!(one("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(one("a=b"), "a=b");
    }

    #[test]
    fn a_row_has_a_cell_per_column() {
        let event = EventRow {
            id: 7,
            at: chrono::NaiveDate::from_ymd_opt(2026, 12, 3)
                .unwrap()
                .and_hms_opt(7, 8, 9)
                .unwrap(),
            event: "download".into(),
            outcome: Some("granted".into()),
            status: Some(200),
            route: None,
            delivery: None,
            method: None,
            byte_range: None,
            user_id: None,
            username: None,
            link_id: None,
            file_id: None,
            file_name: Some("a,b".into()),
            storage_key: None,
            client: None,
            user_agent: None,
            detail: None,
        };
        let mut out = Vec::new();
        header(&mut out);
        row(&mut out, &event);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0].split(',').count(), COLUMNS.len());
        assert_eq!(
            lines[1],
            "7,2026-12-03 07:08:09,download,granted,200,,,,,,,,,\"a,b\",,,,"
        );
        assert_eq!(lines[2], "");
    }
}
