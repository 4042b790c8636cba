//! The filters of the audit page, its CSV and `audit export`, read from what a person typed
//! into a form or a command line: one parser, so the three always agree on what a date or an
//! event kind means.

use chrono::{Days, NaiveDate, NaiveDateTime};

use crate::db::models::audit_event::EventFilter;
use crate::domain::FileId;

/// Every kind of event the log holds, in the order the page's menu offers them.
pub const EVENT_KINDS: [&str; 18] = [
    "download",
    "upload",
    "edit",
    "owner",
    "replace",
    "moved",
    "delete",
    "link_created",
    "link_revoked",
    "user_created",
    "user_changed",
    "password_set",
    "login",
    "login_failed",
    "user_deleted",
    "password_changed",
    "token_created",
    "token_revoked",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("`{field}` must be a date as YYYY-MM-DD, not “{value}”")]
    BadDate { field: &'static str, value: String },
    #[error("`from` ({from}) is after `to` ({to})")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("“{0}” is not a kind of event (one of: {kinds})", kinds = EVENT_KINDS.join(", "))]
    UnknownEvent(String),
    #[error("“{0}” is not a file id")]
    BadFileId(String),
}

/// The filters as typed; empty text is no filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilterInput {
    pub file: Option<String>,
    pub user: Option<String>,
    pub event: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
}

fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn date(field: &'static str, value: &str) -> Result<NaiveDate, FilterError> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| FilterError::BadDate {
        field,
        value: value.to_owned(),
    })
}

fn midnight(day: NaiveDate) -> NaiveDateTime {
    day.and_time(chrono::NaiveTime::MIN)
}

impl FilterInput {
    /// The same text, trimmed, with empty parts dropped: what links and the form repeat.
    pub fn cleaned(&self) -> Self {
        let keep = |v: &Option<String>| given(v).map(str::to_owned);
        Self {
            file: keep(&self.file),
            user: keep(&self.user),
            event: keep(&self.event),
            from: keep(&self.from),
            to: keep(&self.to),
        }
    }

    /// `from` is from the start of its day and `to` to the end of its day (events are stored
    /// in UTC, so these are UTC days).
    pub fn parse(&self) -> Result<EventFilter, FilterError> {
        let from = given(&self.from).map(|v| date("from", v)).transpose()?;
        let to = given(&self.to).map(|v| date("to", v)).transpose()?;
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(FilterError::Reversed { from, to });
        }
        let event = given(&self.event)
            .map(|e| {
                EVENT_KINDS
                    .iter()
                    .find(|k| **k == e)
                    .map(|k| (*k).to_owned())
                    .ok_or_else(|| FilterError::UnknownEvent(e.to_owned()))
            })
            .transpose()?;
        let file_id = given(&self.file)
            .map(|f| {
                FileId::parse(f)
                    .map(|_| f.to_owned())
                    .map_err(|_| FilterError::BadFileId(f.to_owned()))
            })
            .transpose()?;
        Ok(EventFilter {
            file_id,
            username: given(&self.user).map(str::to_owned),
            event,
            from: from.map(midnight),
            // The day after's midnight, since the filter's end is exclusive; a `to` at the
            // last day chrono knows has no day after, and then no end is needed.
            to: to
                .and_then(|d| d.checked_add_days(Days::new(1)))
                .map(midnight),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(from: &str, to: &str) -> FilterInput {
        FilterInput {
            from: Some(from.to_owned()),
            to: Some(to.to_owned()),
            ..FilterInput::default()
        }
    }

    #[test]
    fn to_takes_in_the_whole_of_its_day() {
        let filter = input("2026-12-01", "2026-12-03").parse().unwrap();
        assert_eq!(
            filter.from.unwrap().to_string(),
            "2026-12-01 00:00:00".to_owned()
        );
        assert_eq!(
            filter.to.unwrap().to_string(),
            "2026-12-04 00:00:00".to_owned()
        );
        let same_day = input("2026-12-03", "2026-12-03").parse().unwrap();
        assert!(same_day.from < same_day.to);
    }

    #[test]
    fn bad_dates_kinds_and_ids_are_refused_with_what_was_wrong() {
        for bad in ["2026-13-01", "yesterday", "2026-12-1x", "01/12/2026"] {
            let error = input(bad, "").parse().unwrap_err();
            assert!(error.to_string().contains(bad), "{error}");
        }
        assert!(matches!(
            input("2026-12-05", "2026-12-01").parse(),
            Err(FilterError::Reversed { .. })
        ));
        let event = FilterInput {
            event: Some("downloads".into()),
            ..FilterInput::default()
        };
        assert!(matches!(event.parse(), Err(FilterError::UnknownEvent(_))));
        let file = FilterInput {
            file: Some("../x".into()),
            ..FilterInput::default()
        };
        assert!(matches!(file.parse(), Err(FilterError::BadFileId(_))));
    }

    #[test]
    fn empty_text_is_no_filter() {
        let blank = FilterInput {
            file: Some(" ".into()),
            user: Some(String::new()),
            event: Some("".into()),
            from: Some("  ".into()),
            to: None,
        };
        assert_eq!(blank.parse().unwrap(), EventFilter::default());
        assert_eq!(blank.cleaned(), FilterInput::default());
    }
}
