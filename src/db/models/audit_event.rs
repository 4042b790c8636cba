//! Rows of the audit log (`audit_events`, README: "Audit log"): written in batches by
//! `audit::Writer`, read newest first by keyset (`id` below the last one shown), so a page
//! costs the same at the millionth event as at the first.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::audit_events;
use crate::db::{Backend, DbConn, DbError};

/// One event as it is written. Text the client chose (user agent, names) is stored as sent;
/// pages escape it and the CSV neutralises what a spreadsheet would run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewEvent {
    pub at: NaiveDateTime,
    pub event: String,
    pub outcome: Option<String>,
    pub status: Option<i32>,
    pub route: Option<String>,
    pub delivery: Option<String>,
    pub method: Option<String>,
    pub byte_range: Option<String>,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub link_id: Option<String>,
    pub file_id: Option<String>,
    pub file_name: Option<String>,
    pub storage_key: Option<String>,
    pub client: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct EventRow {
    pub id: i64,
    pub at: NaiveDateTime,
    pub event: String,
    pub outcome: Option<String>,
    pub status: Option<i32>,
    pub route: Option<String>,
    pub delivery: Option<String>,
    pub method: Option<String>,
    pub byte_range: Option<String>,
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub link_id: Option<String>,
    pub file_id: Option<String>,
    pub file_name: Option<String>,
    pub storage_key: Option<String>,
    pub client: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

/// What `/admin/audit`, its CSV and `audit export` filter on; every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub file_id: Option<String>,
    pub username: Option<String>,
    pub event: Option<String>,
    /// From this time on.
    pub from: Option<NaiveDateTime>,
    /// Before this time.
    pub to: Option<NaiveDateTime>,
}

pub struct AuditEvent;

/// Events a date range may hold for its page to be read by time (`AuditEvent::narrow_range`).
const BY_TIME_EVENTS: i64 = 20_000;

/// Rows per INSERT statement: few enough for any backend's limit on bound values (17 each).
const ROWS_PER_INSERT: usize = 64;
const COLUMNS: &str = "at, event, outcome, status, route, delivery, method, byte_range, user_id, \
                       username, link_id, file_id, file_name, storage_key, client, user_agent, \
                       detail";

/// Text columns after `at`, in `COLUMNS` order (`status` is bound between `outcome` and
/// `route`).
const TEXT_FIELDS: usize = 15;

/// An event as it waits in the audit queue and is written: its text in one allocation.
/// A `NewEvent`'s dozen small strings, made on a request's thread and freed on the writer's,
/// cost the writer more in the allocator (each free contending for the arena of the thread
/// that made it) than SQLite took to store them; these are taken apart on the request's
/// thread, where freeing is cheap.
#[derive(Clone, PartialEq, Eq)]
pub struct PackedEvent {
    at: NaiveDateTime,
    status: Option<i32>,
    text: Box<str>,
    /// Where each text field ends in `text`; `None` for a NULL.
    ends: [Option<u32>; TEXT_FIELDS],
}

impl PackedEvent {
    pub fn pack(e: &NewEvent) -> Self {
        let fields: [Option<&str>; TEXT_FIELDS] = [
            Some(e.event.as_str()),
            e.outcome.as_deref(),
            e.route.as_deref(),
            e.delivery.as_deref(),
            e.method.as_deref(),
            e.byte_range.as_deref(),
            e.user_id.as_deref(),
            e.username.as_deref(),
            e.link_id.as_deref(),
            e.file_id.as_deref(),
            e.file_name.as_deref(),
            e.storage_key.as_deref(),
            e.client.as_deref(),
            e.user_agent.as_deref(),
            e.detail.as_deref(),
        ];
        let mut text = String::with_capacity(fields.iter().flatten().map(|f| f.len()).sum());
        let mut ends = [None; TEXT_FIELDS];
        for (end, field) in ends.iter_mut().zip(fields) {
            if let Some(field) = field {
                text.push_str(field);
                // Every field is short (names, ids, 200 characters of user agent), but a
                // length past u32 would only make the field NULL, never another's text.
                *end = u32::try_from(text.len()).ok();
            }
        }
        Self {
            at: e.at,
            status: e.status,
            text: text.into_boxed_str(),
            ends,
        }
    }

    /// Text field `i`, or `None` for a NULL.
    fn field(&self, i: usize) -> Option<&str> {
        let end = usize::try_from(self.ends[i]?).ok()?;
        let start = self.ends[..i]
            .iter()
            .rev()
            .flatten()
            .next()
            .map_or(0, |&e| e as usize);
        self.text.get(start..end)
    }

    pub fn unpack(&self) -> NewEvent {
        let f = |i| self.field(i).map(str::to_owned);
        NewEvent {
            at: self.at,
            event: f(0).unwrap_or_default(),
            outcome: f(1),
            status: self.status,
            route: f(2),
            delivery: f(3),
            method: f(4),
            byte_range: f(5),
            user_id: f(6),
            username: f(7),
            link_id: f(8),
            file_id: f(9),
            file_name: f(10),
            storage_key: f(11),
            client: f(12),
            user_agent: f(13),
            detail: f(14),
        }
    }
}

impl std::fmt::Debug for PackedEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.unpack().fmt(f)
    }
}

/// The one NULL every absent text field is bound to (a bound value must outlive the query).
static NULL_TEXT: Option<String> = None;

/// `INSERT INTO audit_events (…) VALUES (…), (…)` for exactly `N` rows. Its text depends
/// only on `N`, so it has a static query id and each connection prepares it once and keeps it:
/// a `sql_query` (never cached) parsed a 64-row, 1,088-placeholder INSERT anew for every
/// chunk, and a statement keyed by its text is built again for every lookup.
struct InsertChunk<'a, const N: usize> {
    rows: &'a [PackedEvent; N],
}

struct InsertChunkOf<const N: usize>;

impl<const N: usize> diesel::query_builder::QueryId for InsertChunk<'_, N> {
    type QueryId = InsertChunkOf<N>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Conn, const N: usize> RunQueryDsl<Conn> for InsertChunk<'_, N> {}

impl<DB, const N: usize> diesel::query_builder::QueryFragment<DB> for InsertChunk<'_, N>
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<diesel::sql_types::Timestamp>
        + diesel::sql_types::HasSqlType<diesel::sql_types::Text>
        + diesel::sql_types::HasSqlType<diesel::sql_types::Integer>,
    NaiveDateTime: diesel::serialize::ToSql<diesel::sql_types::Timestamp, DB>,
    str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    i32: diesel::serialize::ToSql<diesel::sql_types::Integer, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        use diesel::sql_types::{Integer, Nullable, Text, Timestamp};
        out.push_sql("INSERT INTO audit_events (");
        out.push_sql(COLUMNS);
        out.push_sql(") VALUES ");
        for (n, e) in self.rows.iter().enumerate() {
            out.push_sql(if n == 0 { "(" } else { ", (" });
            out.push_bind_param::<Timestamp, _>(&e.at)?;
            for i in 0..TEXT_FIELDS {
                out.push_sql(", ");
                if i == 2 {
                    out.push_bind_param::<Nullable<Integer>, _>(&e.status)?;
                    out.push_sql(", ");
                }
                // Text and Nullable<Text> share their bind type on both backends.
                match e.field(i) {
                    Some(text) => out.push_bind_param::<Text, str>(text)?,
                    None => out.push_bind_param::<Nullable<Text>, _>(&NULL_TEXT)?,
                }
            }
            out.push_sql(")");
        }
        Ok(())
    }
}

/// Inserts `rows` in statements of `N` rows; returns the rows left over (fewer than `N`).
fn insert_by<'a, C, const N: usize>(
    conn: &mut C,
    rows: &'a [PackedEvent],
) -> Result<&'a [PackedEvent], diesel::result::Error>
where
    C: diesel::Connection,
    for<'r> InsertChunk<'r, N>: diesel::query_builder::QueryFragment<C::Backend>,
{
    let (chunks, rest) = rows.as_chunks::<N>();
    for rows in chunks {
        InsertChunk { rows }.execute(conn)?;
    }
    Ok(rest)
}

impl AuditEvent {
    /// Writes a batch in one transaction.
    pub fn insert_batch(conn: &mut DbConn, events: &[NewEvent]) -> Result<(), DbError> {
        let packed: Vec<PackedEvent> = events.iter().map(PackedEvent::pack).collect();
        Self::insert_packed(conn, &packed)
    }

    /// Writes a batch in one transaction: statements of 64 rows (a statement per row cost
    /// the writer a third of the CPU the downloads it recorded took), the rest in 16s, 4s
    /// and 1s, so each connection keeps four prepared statements.
    pub fn insert_packed(conn: &mut DbConn, events: &[PackedEvent]) -> Result<(), DbError> {
        fn all<C>(conn: &mut C, events: &[PackedEvent]) -> Result<(), diesel::result::Error>
        where
            C: diesel::Connection,
            for<'r> InsertChunk<'r, ROWS_PER_INSERT>:
                diesel::query_builder::QueryFragment<C::Backend>,
            for<'r> InsertChunk<'r, 16>: diesel::query_builder::QueryFragment<C::Backend>,
            for<'r> InsertChunk<'r, 4>: diesel::query_builder::QueryFragment<C::Backend>,
            for<'r> InsertChunk<'r, 1>: diesel::query_builder::QueryFragment<C::Backend>,
        {
            conn.transaction(|conn| {
                let rest = insert_by::<_, ROWS_PER_INSERT>(conn, events)?;
                let rest = insert_by::<_, 16>(conn, rest)?;
                let rest = insert_by::<_, 4>(conn, rest)?;
                insert_by::<_, 1>(conn, rest)?;
                Ok(())
            })
        }
        // Each backend's own connection, whose statement cache keeps the prepared statements.
        match conn {
            DbConn::Sqlite(c) => all(c, events)?,
            DbConn::Postgres(c) => all(c, events)?,
        }
        Ok(())
    }

    /// The events `filter` matches. `by_time` keeps the database off the indexes of the
    /// file, user and event (`x || ''` is not the column, for SQLite and PostgreSQL alike), so
    /// it reads the date range through the time index instead: for a narrow range far back,
    /// walking a user's or an event's index from the newest event down to that range read
    /// most of the table (1.8 s over a million events; 1 ms by time).
    fn filtered(filter: &EventFilter, by_time: bool) -> audit_events::BoxedQuery<'static, Backend> {
        let mut query = audit_events::table.into_boxed::<Backend>();
        if let Some(file) = &filter.file_id {
            query = if by_time {
                query.filter(audit_events::file_id.concat("").eq(file.clone()))
            } else {
                query.filter(audit_events::file_id.eq(file.clone()))
            };
        }
        if let Some(user) = &filter.username {
            query = if by_time {
                query.filter(audit_events::username.concat("").eq(user.clone()))
            } else {
                query.filter(audit_events::username.eq(user.clone()))
            };
        }
        if let Some(event) = &filter.event {
            query = if by_time {
                query.filter(audit_events::event.concat("").eq(event.clone()))
            } else {
                query.filter(audit_events::event.eq(event.clone()))
            };
        }
        if let Some(from) = filter.from {
            query = query.filter(audit_events::at.ge(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(audit_events::at.lt(to));
        }
        query
    }

    /// Whether `filter` names a file, a user or an event together with a date range that holds
    /// few events (about `BY_TIME_EVENTS` or fewer), so that its page is best read by time.
    /// The count is estimated from the ids of the range's first and last events (two seeks
    /// in the time index); it only picks the way the rows are read, never which rows match.
    fn narrow_range(conn: &mut DbConn, filter: &EventFilter) -> Result<bool, DbError> {
        use diesel::dsl::{max, min};
        let names_more =
            filter.file_id.is_some() || filter.username.is_some() || filter.event.is_some();
        if !names_more || (filter.from.is_none() && filter.to.is_none()) {
            return Ok(false);
        }
        let first: Option<i64> = match filter.from {
            Some(from) => audit_events::table
                .filter(audit_events::at.ge(from))
                .order((audit_events::at.asc(), audit_events::id.asc()))
                .select(audit_events::id)
                .first(conn)
                .optional()?,
            None => audit_events::table
                .select(min(audit_events::id))
                .first(conn)?,
        };
        let last: Option<i64> = match filter.to {
            Some(to) => audit_events::table
                .filter(audit_events::at.lt(to))
                .order((audit_events::at.desc(), audit_events::id.desc()))
                .select(audit_events::id)
                .first(conn)
                .optional()?,
            None => audit_events::table
                .select(max(audit_events::id))
                .first(conn)?,
        };
        Ok(match (first, last) {
            (Some(first), Some(last)) => last.saturating_sub(first) <= BY_TIME_EVENTS,
            // No event in the range: reading it by time finds that at once.
            _ => true,
        })
    }

    /// Up to `limit` events matching `filter`, newest first, all older than the event
    /// `before` (keyset paging: the next page starts below the last id shown).
    pub fn page(
        conn: &mut DbConn,
        filter: &EventFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<EventRow>, DbError> {
        let by_time = Self::narrow_range(conn, filter)?;
        let mut query = Self::filtered(filter, by_time);
        if let Some(before) = before {
            query = query.filter(audit_events::id.lt(before));
        }
        Ok(query
            .order(audit_events::id.desc())
            .limit(limit)
            .select(EventRow::as_select())
            .load(conn)?)
    }

    /// Granted downloads of a file that sent it (GET, not a 304): what its page counts.
    pub fn downloads_of_file(conn: &mut DbConn, file_id: &str) -> Result<i64, DbError> {
        Ok(audit_events::table
            .filter(audit_events::file_id.eq(file_id))
            .filter(audit_events::event.eq("download"))
            .filter(audit_events::outcome.eq("granted"))
            .filter(audit_events::method.eq("GET"))
            .filter(audit_events::status.ne(304))
            .count()
            .get_result(conn)?)
    }

    /// Removes up to `batch` events older than `before`, oldest first; returns how many. Run
    /// in a loop of short transactions, so no lock is held for long.
    pub fn prune(conn: &mut DbConn, before: NaiveDateTime, batch: i64) -> Result<usize, DbError> {
        let doomed: Vec<i64> = audit_events::table
            .filter(audit_events::at.lt(before))
            .order(audit_events::id.asc())
            .limit(batch)
            .select(audit_events::id)
            .load(conn)?;
        let (Some(first), Some(last)) = (doomed.first(), doomed.last()) else {
            return Ok(0);
        };
        Ok(diesel::delete(
            audit_events::table
                .filter(audit_events::id.ge(*first))
                .filter(audit_events::id.le(*last))
                .filter(audit_events::at.lt(before)),
        )
        .execute(conn)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_event_gives_back_every_field_nulls_and_empty_text_apart() {
        let full = NewEvent {
            at: chrono::DateTime::from_timestamp(1_800_000_000, 123_456_000)
                .unwrap()
                .naive_utc(),
            event: "download".into(),
            outcome: Some("refused".into()),
            status: Some(403),
            route: Some("detail".into()),
            delivery: None,
            method: Some("GET".into()),
            byte_range: Some(String::new()),
            user_id: Some("0c2f…".into()),
            username: Some("jörg".into()),
            link_id: None,
            file_id: Some("f1".into()),
            file_name: Some("Überweisung, \"März\".pdf".into()),
            storage_key: Some("a/b.pdf".into()),
            client: Some("::1".into()),
            user_agent: Some("curl/8".into()),
            detail: None,
        };
        assert_eq!(PackedEvent::pack(&full).unpack(), full);
        let bare = NewEvent {
            event: "login_failed".into(),
            ..NewEvent::default()
        };
        assert_eq!(PackedEvent::pack(&bare).unpack(), bare);
        let empty = NewEvent::default();
        assert_eq!(PackedEvent::pack(&empty).unpack(), empty);
    }
}
