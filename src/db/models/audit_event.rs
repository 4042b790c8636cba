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

/// Rows per INSERT statement: few enough for any backend's limit on bound values.
const ROWS_PER_INSERT: usize = 64;
const COLUMNS: [&str; 17] = [
    "at",
    "event",
    "outcome",
    "status",
    "route",
    "delivery",
    "method",
    "byte_range",
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

/// `INSERT INTO audit_events (…) VALUES (…), (…)` for `rows` rows, with SQLite's `?` or
/// PostgreSQL's `$n` placeholders, in the order `insert_batch` binds.
fn insert_sql(rows: usize, postgres: bool) -> String {
    let mut sql = format!("INSERT INTO audit_events ({}) VALUES ", COLUMNS.join(", "));
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 0..COLUMNS.len() {
            if column > 0 {
                sql.push_str(", ");
            }
            n += 1;
            if postgres {
                sql.push_str(&format!("${n}"));
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

impl AuditEvent {
    /// Writes a batch in one transaction, up to `ROWS_PER_INSERT` rows per statement. A
    /// statement per row cost the writer a third of the CPU the downloads it recorded took
    /// (diesel builds and binds each one anew); a full statement here has one text, prepared
    /// once per connection.
    pub fn insert_batch(conn: &mut DbConn, events: &[NewEvent]) -> Result<(), DbError> {
        use diesel::sql_types::{Integer, Nullable, Text, Timestamp};
        let postgres = matches!(conn, DbConn::Postgres(_));
        conn.transaction(|conn| {
            for chunk in events.chunks(ROWS_PER_INSERT) {
                let mut query =
                    diesel::sql_query(insert_sql(chunk.len(), postgres)).into_boxed::<Backend>();
                for e in chunk {
                    query = query
                        .bind::<Timestamp, _>(e.at)
                        .bind::<Text, _>(&e.event)
                        .bind::<Nullable<Text>, _>(&e.outcome)
                        .bind::<Nullable<Integer>, _>(e.status)
                        .bind::<Nullable<Text>, _>(&e.route)
                        .bind::<Nullable<Text>, _>(&e.delivery)
                        .bind::<Nullable<Text>, _>(&e.method)
                        .bind::<Nullable<Text>, _>(&e.byte_range)
                        .bind::<Nullable<Text>, _>(&e.user_id)
                        .bind::<Nullable<Text>, _>(&e.username)
                        .bind::<Nullable<Text>, _>(&e.link_id)
                        .bind::<Nullable<Text>, _>(&e.file_id)
                        .bind::<Nullable<Text>, _>(&e.file_name)
                        .bind::<Nullable<Text>, _>(&e.storage_key)
                        .bind::<Nullable<Text>, _>(&e.client)
                        .bind::<Nullable<Text>, _>(&e.user_agent)
                        .bind::<Nullable<Text>, _>(&e.detail);
                }
                query.execute(conn)?;
            }
            Ok(())
        })
    }

    fn filtered(filter: &EventFilter) -> audit_events::BoxedQuery<'static, Backend> {
        let mut query = audit_events::table.into_boxed::<Backend>();
        if let Some(file) = &filter.file_id {
            query = query.filter(audit_events::file_id.eq(file.clone()));
        }
        if let Some(user) = &filter.username {
            query = query.filter(audit_events::username.eq(user.clone()));
        }
        if let Some(event) = &filter.event {
            query = query.filter(audit_events::event.eq(event.clone()));
        }
        if let Some(from) = filter.from {
            query = query.filter(audit_events::at.ge(from));
        }
        if let Some(to) = filter.to {
            query = query.filter(audit_events::at.lt(to));
        }
        query
    }

    /// Up to `limit` events matching `filter`, newest first, all older than the event
    /// `before` (keyset paging: the next page starts below the last id shown).
    pub fn page(
        conn: &mut DbConn,
        filter: &EventFilter,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<EventRow>, DbError> {
        let mut query = Self::filtered(filter);
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
