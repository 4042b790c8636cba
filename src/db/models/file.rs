//! Files: the row, and its queries. The bytes live in the storage the row names.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::models::user::User;
use crate::db::schema::{file_readers, files, users};
use crate::db::{Backend, DbConn, DbError};
use crate::domain::{AccessRule, FileId, Role, StorageKey, UserId, Username, fold, search_text};

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = files)]
pub struct FileRow {
    pub id: FileId,
    pub title: String,
    pub original_name: String,
    pub storage: String,
    pub storage_key: StorageKey,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
    pub owner_id: UserId,
    pub uploaded_by_id: UserId,
    #[diesel(column_name = access)]
    pub rule: AccessRule,
    pub uploaded_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A file row with its owner's name, for lists and the detail page.
#[derive(Debug, Clone)]
pub struct FileWithOwner {
    pub file: FileRow,
    pub owner: Username,
}

/// A file to insert: the row's columns but its timestamps, which `FileRow::insert` sets.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = files)]
pub struct NewFile {
    pub id: FileId,
    pub title: String,
    pub original_name: String,
    pub storage: String,
    pub storage_key: StorageKey,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
    pub owner_id: UserId,
    pub uploaded_by_id: UserId,
    #[diesel(column_name = access)]
    pub rule: AccessRule,
    /// For the `users` rule; rows of `file_readers`, not a column.
    #[diesel(skip_insertion)]
    pub readers: Vec<UserId>,
}

/// A file's new content: what `FileRow::replace_content` writes.
#[derive(Debug, Clone)]
pub struct NewContent {
    pub original_name: String,
    pub storage: String,
    pub storage_key: StorageKey,
    pub size: i64,
    pub content_type: String,
    pub sha256: String,
}

/// One page of a listing.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: i64,
    pub pages: i64,
    pub total: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Substring of the title or the original name, in any case (`domain::fold`), `%` and `_`
    /// literal.
    pub search: Option<String>,
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
    pub sort: Sort,
}

/// How a list of files is ordered; the URL value is `as_str`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    #[default]
    Newest,
    Oldest,
    Name,
    NameDesc,
    Size,
    SizeDesc,
}

impl Sort {
    /// An unknown value is the default order, as for any other link that went stale.
    pub fn parse(value: Option<&str>) -> Self {
        match value.unwrap_or_default() {
            "oldest" => Sort::Oldest,
            "name" => Sort::Name,
            "-name" => Sort::NameDesc,
            "size" => Sort::Size,
            "-size" => Sort::SizeDesc,
            _ => Sort::Newest,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::Oldest => "oldest",
            Sort::Name => "name",
            Sort::NameDesc => "-name",
            Sort::Size => "size",
            Sort::SizeDesc => "-size",
        }
    }
}

/// `%…%` for LIKE over `search_text`: the search folded as the column is, with its own `%`,
/// `_` and `\` escaped so that they match themselves.
fn like_pattern(search: &str) -> String {
    let mut out = String::from("%");
    for c in fold(search).chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The LIKE pattern of a search, or none for an empty one (the whole list).
fn search_pattern(search: Option<&str>) -> Option<String> {
    search
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(like_pattern)
}

/// A search that matches at most this many files is paged from the ids of its matches, found
/// in one scan of the narrow `search_text` index; past it, matches are common enough that
/// walking the order's index finds a page quickly, and a count gives the total.
const FEW_MATCHES: i64 = 1000;

/// Rows folded per transaction by `fold_unfolded`.
const FOLD_BATCH: usize = 500;

type BoxedFiles = files::BoxedQuery<'static, Backend>;

/// The files matching the LIKE `pattern` that `user` may read: the SQL twin of
/// `access::can_read`.
fn filtered(user: Option<&User>, pattern: Option<&str>) -> BoxedFiles {
    let mut query = files::table.into_boxed();
    if let Some(pattern) = pattern {
        query = query.filter(files::search_text.like(pattern.to_owned()).escape('\\'));
    }
    if let Some(user) = user {
        if !user.is_active {
            return query.filter(files::id.ne(files::id));
        }
        if user.role() < Role::Staff {
            let uid = user.id.clone();
            let listed = diesel::dsl::exists(
                file_readers::table
                    .filter(file_readers::file_id.eq(files::id))
                    .filter(file_readers::user_id.eq(uid.clone())),
            );
            query = query.filter(
                files::access
                    .eq(AccessRule::Authenticated)
                    .or(files::owner_id
                        .eq(uid)
                        .and(files::access.eq_any([AccessRule::Owner, AccessRule::Users])))
                    .or(files::access.eq(AccessRule::Users).and(listed)),
            );
        }
    }
    query
}

impl FileRow {
    pub fn insert(conn: &mut DbConn, new: &NewFile) -> Result<FileRow, DbError> {
        let now = Utc::now().naive_utc();
        conn.transaction(|conn| {
            diesel::insert_into(files::table)
                .values((
                    new,
                    files::search_text.eq(search_text(&new.title, &new.original_name)),
                    files::uploaded_at.eq(now),
                    files::updated_at.eq(now),
                ))
                .execute(conn)?;
            Self::replace_readers(conn, &new.id, &new.readers)?;
            // The key's reservation ends with the row that now holds it.
            super::pending_upload::PendingKey::release_in(conn, &new.storage, &new.storage_key)?;
            files::table
                .filter(files::id.eq(&new.id))
                .select(FileRow::as_select())
                .get_result(conn)
        })
        .map_err(DbError::from)
    }

    fn replace_readers(
        conn: &mut DbConn,
        file_id: &FileId,
        readers: &[UserId],
    ) -> Result<(), diesel::result::Error> {
        diesel::delete(file_readers::table.filter(file_readers::file_id.eq(file_id)))
            .execute(conn)?;
        // Each reader once: a duplicate would break the primary key (and, on PostgreSQL, the
        // whole transaction).
        let unique: std::collections::BTreeSet<&UserId> = readers.iter().collect();
        for user_id in unique {
            diesel::insert_into(file_readers::table)
                .values((
                    file_readers::file_id.eq(file_id),
                    file_readers::user_id.eq(user_id),
                ))
                .execute(conn)?;
        }
        Ok(())
    }

    pub fn find(conn: &mut DbConn, id: &FileId) -> Result<Option<FileRow>, DbError> {
        Ok(files::table
            .filter(files::id.eq(id))
            .select(FileRow::as_select())
            .get_result(conn)
            .optional()?)
    }

    /// A file and whether `user_id` is on its list of readers: all a download decides on,
    /// in one statement (no `LIMIT`, which SQLite would re-prepare on every call).
    pub fn find_for_reader(
        conn: &mut DbConn,
        id: &FileId,
        user_id: &UserId,
    ) -> Result<Option<(FileRow, bool)>, DbError> {
        let listed = diesel::dsl::exists(
            file_readers::table
                .filter(file_readers::file_id.eq(files::id))
                .filter(file_readers::user_id.eq(user_id.clone())),
        );
        Ok(files::table
            .filter(files::id.eq(id))
            .select((FileRow::as_select(), listed))
            .get_result(conn)
            .optional()?)
    }

    /// The file stored under `key` in `storage`, if a row names it.
    pub fn find_by_key(
        conn: &mut DbConn,
        storage: &str,
        key: &StorageKey,
    ) -> Result<Option<FileRow>, DbError> {
        Ok(files::table
            .filter(files::storage.eq(storage))
            .filter(files::storage_key.eq(key))
            .select(FileRow::as_select())
            .get_result(conn)
            .optional()?)
    }

    pub fn find_with_owner(
        conn: &mut DbConn,
        id: &FileId,
    ) -> Result<Option<FileWithOwner>, DbError> {
        Ok(files::table
            .inner_join(users::table.on(users::id.eq(files::owner_id)))
            .filter(files::id.eq(id))
            .select((FileRow::as_select(), users::username))
            .get_result::<(FileRow, Username)>(conn)
            .optional()?
            .map(|(file, owner)| FileWithOwner { file, owner }))
    }

    /// Usernames on the file's list of readers, sorted.
    pub fn reader_names(conn: &mut DbConn, file_id: &FileId) -> Result<Vec<Username>, DbError> {
        Ok(file_readers::table
            .inner_join(users::table)
            .filter(file_readers::file_id.eq(file_id))
            .select(users::username)
            .order(users::username.asc())
            .load(conn)?)
    }

    fn page_of(
        conn: &mut DbConn,
        user: Option<&User>,
        query: &ListQuery,
    ) -> Result<Page<FileWithOwner>, DbError> {
        let per_page = query.per_page.clamp(1, 500);
        let pattern = search_pattern(query.search.as_deref());
        // A search's matches, when they are few: their ids are the total and the page's base.
        let few: Option<Vec<String>> = match &pattern {
            Some(_) => {
                let ids: Vec<String> = filtered(user, pattern.as_deref())
                    .select(files::id)
                    .limit(FEW_MATCHES + 1)
                    .load(conn)?;
                (ids.len() <= FEW_MATCHES as usize).then_some(ids)
            }
            None => None,
        };
        let total: i64 = match &few {
            Some(ids) => i64::try_from(ids.len()).unwrap_or(i64::MAX),
            None => filtered(user, pattern.as_deref())
                .count()
                .get_result(conn)?,
        };
        let pages = ((total + per_page - 1) / per_page).max(1);
        let page = query.page.clamp(1, pages);
        let base = match few {
            // Already filtered (search and access); sorted through the primary key.
            Some(ids) => files::table.into_boxed().filter(files::id.eq_any(ids)),
            None => filtered(user, pattern.as_deref()),
        };
        // The id last: a stable order when the first key ties, so pages never overlap.
        let ordered = match query.sort {
            Sort::Newest => base.order((files::uploaded_at.desc(), files::id.desc())),
            Sort::Oldest => base.order((files::uploaded_at.asc(), files::id.asc())),
            Sort::Name => base.order((lower(files::title).asc(), files::id.asc())),
            Sort::NameDesc => base.order((lower(files::title).desc(), files::id.desc())),
            Sort::Size => base.order((files::size.asc(), files::id.asc())),
            Sort::SizeDesc => base.order((files::size.desc(), files::id.desc())),
        };
        // The page's ids first, from the order's index alone (a deep page skips index
        // entries, not joined rows), then their rows, put back in that order.
        let ids: Vec<String> = ordered
            .select(files::id)
            .limit(per_page)
            .offset((page - 1) * per_page)
            .load(conn)?;
        let mut rows: Vec<(FileRow, Username)> = files::table
            .inner_join(users::table.on(users::id.eq(files::owner_id)))
            .filter(files::id.eq_any(&ids))
            .select((FileRow::as_select(), users::username))
            .load(conn)?;
        rows.sort_by_key(|(file, _)| ids.iter().position(|id| id == file.id.as_str()));
        Ok(Page {
            items: rows
                .into_iter()
                .map(|(file, owner)| FileWithOwner { file, owner })
                .collect(),
            page,
            pages,
            total,
        })
    }

    /// Every file, newest first: the admin list.
    pub fn admin_page(
        conn: &mut DbConn,
        query: &ListQuery,
    ) -> Result<Page<FileWithOwner>, DbError> {
        Self::page_of(conn, None, query)
    }

    /// The files `user` may read, newest first.
    pub fn readable_page(
        conn: &mut DbConn,
        user: &User,
        query: &ListQuery,
    ) -> Result<Page<FileWithOwner>, DbError> {
        Self::page_of(conn, Some(user), query)
    }

    pub fn update_access(
        conn: &mut DbConn,
        id: &FileId,
        title: &str,
        rule: AccessRule,
        readers: &[UserId],
    ) -> Result<bool, DbError> {
        conn.transaction(|conn| {
            // The name is part of what search looks in, and stays as it is.
            let Some(original_name) = files::table
                .filter(files::id.eq(id))
                .select(files::original_name)
                .get_result::<String>(conn)
                .optional()?
            else {
                return Ok(false);
            };
            diesel::update(files::table.filter(files::id.eq(id)))
                .set((
                    files::title.eq(title),
                    files::search_text.eq(search_text(title, &original_name)),
                    files::access.eq(rule),
                    files::updated_at.eq(Utc::now().naive_utc()),
                ))
                .execute(conn)?;
            Self::replace_readers(conn, id, readers)?;
            Ok(true)
        })
        .map_err(|e: diesel::result::Error| DbError::from(e))
    }

    /// Points the row at a newly committed object (a replaced file's content), in one
    /// transaction with the end of that object's reservation. The id, the title, the rule,
    /// its readers and the share links stay. Returns the row as it was, or none if it is gone.
    pub fn replace_content(
        conn: &mut DbConn,
        id: &FileId,
        content: &NewContent,
    ) -> Result<Option<FileRow>, DbError> {
        conn.transaction(|conn| {
            let Some(before) = files::table
                .filter(files::id.eq(id))
                .select(FileRow::as_select())
                .get_result(conn)
                .optional()?
            else {
                return Ok(None);
            };
            diesel::update(files::table.filter(files::id.eq(id)))
                .set((
                    files::original_name.eq(&content.original_name),
                    files::search_text.eq(search_text(&before.title, &content.original_name)),
                    files::storage.eq(&content.storage),
                    files::storage_key.eq(&content.storage_key),
                    files::size.eq(content.size),
                    files::content_type.eq(&content.content_type),
                    files::sha256.eq(&content.sha256),
                    files::updated_at.eq(Utc::now().naive_utc()),
                ))
                .execute(conn)?;
            super::pending_upload::PendingKey::release_in(
                conn,
                &content.storage,
                &content.storage_key,
            )?;
            Ok(Some(before))
        })
        .map_err(|e: diesel::result::Error| DbError::from(e))
    }

    /// Changes who owns the file; returns the old owner's name, or none if the file is gone.
    pub fn set_owner(
        conn: &mut DbConn,
        id: &FileId,
        owner: &UserId,
    ) -> Result<Option<Username>, DbError> {
        conn.transaction(|conn| {
            let Some(old) = Self::find_with_owner(conn, id)? else {
                return Ok(None);
            };
            diesel::update(files::table.filter(files::id.eq(id)))
                .set((
                    files::owner_id.eq(owner),
                    files::updated_at.eq(Utc::now().naive_utc()),
                ))
                .execute(conn)?;
            Ok(Some(old.owner))
        })
    }

    /// Other files with the same content (SHA-256), newest first, at most `limit`.
    pub fn same_content(
        conn: &mut DbConn,
        sha256: &str,
        except: &FileId,
        limit: i64,
    ) -> Result<Vec<(FileId, String)>, DbError> {
        Ok(files::table
            .filter(files::sha256.eq(sha256))
            .filter(files::id.ne(except))
            .order((files::uploaded_at.desc(), files::id.desc()))
            .select((files::id, files::title))
            .limit(limit)
            .load(conn)?)
    }

    pub fn delete(conn: &mut DbConn, id: &FileId) -> Result<bool, DbError> {
        Ok(diesel::delete(files::table.filter(files::id.eq(id))).execute(conn)? > 0)
    }

    pub fn count(conn: &mut DbConn) -> Result<i64, DbError> {
        Ok(files::table.count().get_result(conn)?)
    }

    /// Writes the `search_text` of the rows that have none yet (written before the column
    /// existed, or by hand), folded as every write folds it, a batch per transaction so a
    /// big table is not locked for the whole run; returns how many. With nothing to do it is
    /// one lookup in an index (the migration's). Running it twice, or two at once, writes
    /// the same values.
    pub fn fold_unfolded(conn: &mut DbConn) -> Result<usize, DbError> {
        let mut folded = 0;
        loop {
            let (read, written) = conn.transaction(|conn| {
                let rows: Vec<(String, String, String)> = files::table
                    .filter(files::search_text.eq(""))
                    .select((files::id, files::title, files::original_name))
                    .limit(FOLD_BATCH as i64)
                    .load(conn)?;
                let mut written = 0;
                for (id, title, name) in &rows {
                    // Only if nothing changed it since it was read (an edit by an instance
                    // already running writes its own fold, an older one a new title): else
                    // it is left for the next batch to read again.
                    written += diesel::update(
                        files::table
                            .filter(files::id.eq(id))
                            .filter(files::search_text.eq(""))
                            .filter(files::title.eq(title))
                            .filter(files::original_name.eq(name)),
                    )
                    .set(files::search_text.eq(search_text(title, name)))
                    .execute(conn)?;
                }
                Ok::<_, diesel::result::Error>((rows.len(), written))
            })?;
            folded += written;
            // A folded value is never '', so each batch leaves fewer rows to find.
            if read < FOLD_BATCH {
                return Ok(folded);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("Ab"), "%ab%");
        assert_eq!(like_pattern("Überweisung"), "%überweisung%");
        assert_eq!(like_pattern("50%_x\\"), "%50\\%\\_x\\\\%");
    }
}
