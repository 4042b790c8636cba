//! Files: the row, and its queries. The bytes live in the storage the row names.

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::models::user::User;
use crate::db::schema::{file_readers, files, users};
use crate::db::{Backend, DbConn, DbError};
use crate::domain::{
    AccessRule, FileId, FileType, Role, StorageKey, TypeFamily, UserId, Username, fold, search_text,
};

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
    /// The image's own size, once its thumbnails are made (src/thumbnails/).
    pub image_width: Option<i32>,
    pub image_height: Option<i32>,
    /// Whether its thumbnails are stored next to its object.
    pub thumbnails: bool,
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

/// A stored file as far as the command line's upload compares it (`FileRow::stored_copies`):
/// where it is and who may read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCopy {
    pub id: FileId,
    pub storage: String,
    pub rule: AccessRule,
    /// Its list of readers, whatever the rule.
    pub readers: std::collections::BTreeSet<UserId>,
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
    pub filters: Filters,
}

/// The list filters; each one left out is every file. Each is a column with an index that
/// ends in the newest-first order (the `files_type_family` migration).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub rule: Option<AccessRule>,
    /// The owner's name: an unknown name matches no file.
    pub owner: Option<Username>,
    pub family: Option<TypeFamily>,
    /// A storage's configured name.
    pub storage: Option<String>,
    /// Uploaded at or after.
    pub since: Option<NaiveDateTime>,
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
    /// By type family, then the sniffed type.
    Type,
    TypeDesc,
    /// By the owner's name.
    Owner,
    OwnerDesc,
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
            "type" => Sort::Type,
            "-type" => Sort::TypeDesc,
            "owner" => Sort::Owner,
            "-owner" => Sort::OwnerDesc,
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
            Sort::Type => "type",
            Sort::TypeDesc => "-type",
            Sort::Owner => "owner",
            Sort::OwnerDesc => "-owner",
        }
    }

    /// Every order, in the order a sort menu offers them.
    pub const ALL: [Sort; 10] = [
        Sort::Newest,
        Sort::Oldest,
        Sort::Name,
        Sort::NameDesc,
        Sort::Size,
        Sort::SizeDesc,
        Sort::Type,
        Sort::TypeDesc,
        Sort::Owner,
        Sort::OwnerDesc,
    ];

    /// The order in words, for a sort menu.
    pub fn describe(self) -> &'static str {
        match self {
            Sort::Newest => "Newest first",
            Sort::Oldest => "Oldest first",
            Sort::Name => "Title A–Z",
            Sort::NameDesc => "Title Z–A",
            Sort::Size => "Smallest first",
            Sort::SizeDesc => "Largest first",
            Sort::Type => "Type A–Z",
            Sort::TypeDesc => "Type Z–A",
            Sort::Owner => "Owner A–Z",
            Sort::OwnerDesc => "Owner Z–A",
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

/// The `type_family` column of a file: what `FileType::of` makes of its name and type.
pub fn type_family(original_name: &str, content_type: &str) -> &'static str {
    FileType::of(original_name, content_type).family.as_str()
}

/// Rows classified per transaction by `classify_untyped`.
const CLASSIFY_BATCH: usize = 500;

/// `$query` narrowed to the files matching the LIKE `pattern` that `user` may read (the SQL
/// twin of `access::can_read`) and passing the filters (`owner`: the owner filter's user,
/// found by name first). A macro, so that the owner order's join takes the very same
/// conditions as the boxed query of the other orders.
macro_rules! narrowed {
    ($query:expr, $user:expr, $pattern:expr, $filters:expr, $owner:expr) => {{
        let (user, pattern, filters, owner): (
            Option<&User>,
            Option<&str>,
            &Filters,
            Option<&UserId>,
        ) = ($user, $pattern, $filters, $owner);
        let mut query = $query;
        if let Some(pattern) = pattern {
            query = query.filter(files::search_text.like(pattern.to_owned()).escape('\\'));
        }
        if let Some(rule) = filters.rule {
            query = query.filter(files::access.eq(rule));
        }
        if let Some(owner) = owner {
            query = query.filter(files::owner_id.eq(owner.clone()));
        }
        if let Some(family) = filters.family {
            query = query.filter(files::type_family.eq(family.as_str()));
        }
        if let Some(storage) = &filters.storage {
            query = query.filter(files::storage.eq(storage.clone()));
        }
        if let Some(since) = filters.since {
            query = query.filter(files::uploaded_at.ge(since));
        }
        if let Some(user) = user {
            if !user.is_active {
                query = query.filter(files::id.ne(files::id));
            } else if user.role() < Role::Staff {
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
    }};
}

/// The files `narrowed!` keeps, as the boxed query every order but the owner's starts from.
fn filtered(
    user: Option<&User>,
    pattern: Option<&str>,
    filters: &Filters,
    owner: Option<&UserId>,
) -> BoxedFiles {
    narrowed!(files::table.into_boxed(), user, pattern, filters, owner)
}

impl FileRow {
    pub fn insert(conn: &mut DbConn, new: &NewFile) -> Result<FileRow, DbError> {
        let now = Utc::now().naive_utc();
        conn.transaction(|conn| {
            diesel::insert_into(files::table)
                .values((
                    new,
                    files::search_text.eq(search_text(&new.title, &new.original_name)),
                    files::type_family.eq(type_family(&new.original_name, &new.content_type)),
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

    /// The files of `ids` that exist, with their owners' names, in the order of `ids`.
    pub fn find_many_with_owner(
        conn: &mut DbConn,
        ids: &[FileId],
    ) -> Result<Vec<FileWithOwner>, DbError> {
        let mut rows: Vec<(FileRow, Username)> = files::table
            .inner_join(users::table.on(users::id.eq(files::owner_id)))
            .filter(files::id.eq_any(ids))
            .select((FileRow::as_select(), users::username))
            .load(conn)?;
        rows.sort_by_key(|(file, _)| ids.iter().position(|id| *id == file.id));
        Ok(rows
            .into_iter()
            .map(|(file, owner)| FileWithOwner { file, owner })
            .collect())
    }

    /// The readers of each file of `ids` (sorted by name), for the lists' access column: one
    /// statement for a whole page.
    pub fn readers_of_many(
        conn: &mut DbConn,
        ids: &[FileId],
    ) -> Result<std::collections::HashMap<FileId, Vec<Username>>, DbError> {
        let rows: Vec<(FileId, Username)> = file_readers::table
            .inner_join(users::table)
            .filter(file_readers::file_id.eq_any(ids))
            .select((file_readers::file_id, users::username))
            .order((file_readers::file_id.asc(), users::username.asc()))
            .load(conn)?;
        let mut out: std::collections::HashMap<FileId, Vec<Username>> = Default::default();
        for (id, name) in rows {
            out.entry(id).or_default().push(name);
        }
        Ok(out)
    }

    fn page_of(
        conn: &mut DbConn,
        user: Option<&User>,
        query: &ListQuery,
    ) -> Result<Page<FileWithOwner>, DbError> {
        let per_page = query.per_page.clamp(1, 500);
        let pattern = search_pattern(query.search.as_deref());
        let owner: Option<UserId> = match &query.filters.owner {
            None => None,
            Some(name) => match users::table
                .filter(users::username.eq(name))
                .select(users::id)
                .get_result::<UserId>(conn)
                .optional()?
            {
                Some(id) => Some(id),
                // Nobody of that name: nobody's files.
                None => return Self::page_rows(conn, Vec::new(), 1, 1, 0),
            },
        };
        // A search's matches, when they are few: their ids are the total and the page's base.
        let few: Option<Vec<String>> = match &pattern {
            Some(_) => {
                let ids: Vec<String> =
                    filtered(user, pattern.as_deref(), &query.filters, owner.as_ref())
                        .select(files::id)
                        .limit(FEW_MATCHES + 1)
                        .load(conn)?;
                (ids.len() <= FEW_MATCHES as usize).then_some(ids)
            }
            None => None,
        };
        let total: i64 = match &few {
            Some(ids) => i64::try_from(ids.len()).unwrap_or(i64::MAX),
            None => filtered(user, pattern.as_deref(), &query.filters, owner.as_ref())
                .count()
                .get_result(conn)?,
        };
        let pages = ((total + per_page - 1) / per_page).max(1);
        let page = query.page.clamp(1, pages);
        let offset = (page - 1) * per_page;
        if let Sort::Owner | Sort::OwnerDesc = query.sort {
            // Walked from the users' name index into each owner's files (newest first within
            // an owner, whichever way the names go): no sort of the whole table.
            let joined = files::table
                .inner_join(users::table.on(users::id.eq(files::owner_id)))
                .into_boxed();
            let joined = match &few {
                Some(ids) => joined.filter(files::id.eq_any(ids.clone())),
                None => narrowed!(
                    joined,
                    user,
                    pattern.as_deref(),
                    &query.filters,
                    owner.as_ref()
                ),
            };
            let name = if query.sort == Sort::Owner {
                joined.order(users::username.asc())
            } else {
                joined.order(users::username.desc())
            };
            let ids: Vec<String> = name
                .then_order_by((files::uploaded_at.desc(), files::id.desc()))
                .select(files::id)
                .limit(per_page)
                .offset(offset)
                .load(conn)?;
            return Self::page_rows(conn, ids, page, pages, total);
        }
        let base = match few {
            // Already filtered (search and access); sorted through the primary key.
            Some(ids) => files::table.into_boxed().filter(files::id.eq_any(ids)),
            None => filtered(user, pattern.as_deref(), &query.filters, owner.as_ref()),
        };
        // The id last: a stable order when the first key ties, so pages never overlap.
        let ordered = match query.sort {
            Sort::Newest => base.order((files::uploaded_at.desc(), files::id.desc())),
            Sort::Oldest => base.order((files::uploaded_at.asc(), files::id.asc())),
            Sort::Name => base.order((lower(files::title).asc(), files::id.asc())),
            Sort::NameDesc => base.order((lower(files::title).desc(), files::id.desc())),
            Sort::Size => base.order((files::size.asc(), files::id.asc())),
            Sort::SizeDesc => base.order((files::size.desc(), files::id.desc())),
            Sort::Type => base.order((
                files::type_family.asc(),
                files::content_type.asc(),
                files::id.asc(),
            )),
            Sort::TypeDesc => base.order((
                files::type_family.desc(),
                files::content_type.desc(),
                files::id.desc(),
            )),
            // Taken above.
            Sort::Owner | Sort::OwnerDesc => base,
        };
        // The page's ids first, from the order's index alone (a deep page skips index
        // entries, not joined rows), then their rows, put back in that order.
        let ids: Vec<String> = ordered
            .select(files::id)
            .limit(per_page)
            .offset(offset)
            .load(conn)?;
        Self::page_rows(conn, ids, page, pages, total)
    }

    /// The rows of a page's `ids`, with their owners' names, in the order of `ids`.
    fn page_rows(
        conn: &mut DbConn,
        ids: Vec<String>,
        page: i64,
        pages: i64,
        total: i64,
    ) -> Result<Page<FileWithOwner>, DbError> {
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

    /// One page of every file, filtered and ordered as `query` asks: the admin list.
    pub fn admin_page(
        conn: &mut DbConn,
        query: &ListQuery,
    ) -> Result<Page<FileWithOwner>, DbError> {
        Self::page_of(conn, None, query)
    }

    /// One page of the files `user` may read, filtered and ordered as `query` asks.
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

    /// A new access rule and readers, the title left as it is (the bulk action); false when
    /// no row has the id.
    /// In a transaction that changes these files: a write first, so that it holds the write
    /// lock (SQLite) or the rows (PostgreSQL) before it reads them (SQLite refuses at once to
    /// turn a transaction that read into one that writes after another commit).
    pub fn lock_rows(conn: &mut DbConn, ids: &[FileId]) -> Result<(), DbError> {
        diesel::update(files::table.filter(files::id.eq_any(ids)))
            .set(files::updated_at.eq(files::updated_at))
            .execute(conn)?;
        Ok(())
    }

    pub fn update_rule(
        conn: &mut DbConn,
        id: &FileId,
        rule: AccessRule,
        readers: &[UserId],
    ) -> Result<bool, DbError> {
        conn.transaction(|conn| {
            let changed = diesel::update(files::table.filter(files::id.eq(id)))
                .set((
                    files::access.eq(rule),
                    files::updated_at.eq(Utc::now().naive_utc()),
                ))
                .execute(conn)?;
            if changed == 0 {
                return Ok(false);
            }
            Self::replace_readers(conn, id, readers)?;
            Ok(true)
        })
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
            // A write first, so the transaction holds the write lock before it reads: SQLite
            // refuses at once ("database is locked", no busy wait) to turn a transaction that
            // read into one that writes after another commit, and PostgreSQL now holds the
            // row, so two replaces of one file take turns.
            if diesel::update(files::table.filter(files::id.eq(id)))
                .set(files::updated_at.eq(files::updated_at))
                .execute(conn)?
                == 0
            {
                return Ok(None);
            }
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
                    files::type_family
                        .eq(type_family(&content.original_name, &content.content_type)),
                    files::sha256.eq(&content.sha256),
                    files::updated_at.eq(Utc::now().naive_utc()),
                    // The new content gets thumbnails of its own (src/thumbnails/).
                    files::image_width.eq(None::<i32>),
                    files::image_height.eq(None::<i32>),
                    files::thumbnails.eq(false),
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

    /// A new owner; false when no row has the id.
    pub fn update_owner(conn: &mut DbConn, id: &FileId, owner: &UserId) -> Result<bool, DbError> {
        Ok(diesel::update(files::table.filter(files::id.eq(id)))
            .set((
                files::owner_id.eq(owner),
                files::updated_at.eq(Utc::now().naive_utc()),
            ))
            .execute(conn)?
            > 0)
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

    /// The files of `owner` named `name` with this content, newest first, each with where it
    /// is stored and who may read it: what a rerun of the command line's upload compares with
    /// what it would store, to skip only a file stored exactly so.
    pub fn stored_copies(
        conn: &mut DbConn,
        sha256: &str,
        name: &str,
        owner: &UserId,
    ) -> Result<Vec<StoredCopy>, DbError> {
        let rows: Vec<(FileId, String, AccessRule)> = files::table
            .filter(files::sha256.eq(sha256))
            .filter(files::original_name.eq(name))
            .filter(files::owner_id.eq(owner))
            .order((files::uploaded_at.desc(), files::id.desc()))
            .select((files::id, files::storage, files::access))
            .load(conn)?;
        let ids: Vec<&FileId> = rows.iter().map(|(id, _, _)| id).collect();
        let readers: Vec<(FileId, UserId)> = file_readers::table
            .filter(file_readers::file_id.eq_any(ids))
            .select((file_readers::file_id, file_readers::user_id))
            .load(conn)?;
        Ok(rows
            .into_iter()
            .map(|(id, storage, rule)| StoredCopy {
                readers: readers
                    .iter()
                    .filter(|(file, _)| *file == id)
                    .map(|(_, user)| user.clone())
                    .collect(),
                id,
                storage,
                rule,
            })
            .collect())
    }

    /// Deletes the row if it still points at `storage`/`key` (the object its caller has
    /// just removed); false when it has gone or moved to new content meanwhile (a replace).
    pub fn delete_at(
        conn: &mut DbConn,
        id: &FileId,
        storage: &str,
        key: &StorageKey,
    ) -> Result<bool, DbError> {
        Ok(diesel::delete(
            files::table
                .filter(files::id.eq(id))
                .filter(files::storage.eq(storage))
                .filter(files::storage_key.eq(key)),
        )
        .execute(conn)?
            > 0)
    }

    /// The files of `storage` in id order, `limit` at a time after `after`: how `verify` and
    /// `move` go through a storage without holding every row at once.
    pub fn page_in_storage(
        conn: &mut DbConn,
        storage: &str,
        after: Option<&FileId>,
        limit: i64,
    ) -> Result<Vec<FileRow>, DbError> {
        let mut query = files::table
            .filter(files::storage.eq(storage))
            .select(FileRow::as_select())
            .order(files::id.asc())
            .limit(limit)
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(files::id.gt(after.clone()));
        }
        Ok(query.load(conn)?)
    }

    /// Points the row at its object's copy in another storage, if it still points at the
    /// original (`from`): a replace or a delete that came first wins, and this returns false.
    /// In the same transaction the copy's reservation ends and the original is journalled
    /// under `journal` (the mover's name) as an object to remove.
    pub fn move_object(
        conn: &mut DbConn,
        id: &FileId,
        from: (&str, &StorageKey),
        to: (&str, &StorageKey),
        journal: (&str, i64, &str),
    ) -> Result<bool, DbError> {
        conn.transaction(|conn| {
            let switched = diesel::update(
                files::table
                    .filter(files::id.eq(id))
                    .filter(files::storage.eq(from.0))
                    .filter(files::storage_key.eq(from.1)),
            )
            .set((
                files::storage.eq(to.0),
                files::storage_key.eq(to.1),
                // The thumbnails stay with the old key: the move makes new ones and records
                // them, so none is ever looked for where it was not made.
                files::thumbnails.eq(false),
                files::updated_at.eq(Utc::now().naive_utc()),
            ))
            .execute(conn)?
                == 1;
            if switched {
                super::pending_upload::PendingKey::release_in(conn, to.0, to.1)?;
                super::pending_upload::PendingKey::journal_in(
                    conn,
                    from.0,
                    from.1,
                    journal.0,
                    (journal.1, journal.2),
                )?;
            }
            Ok(switched)
        })
        .map_err(|e: diesel::result::Error| DbError::from(e))
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

impl FileRow {
    /// Writes the `type_family` of the rows that have none yet (written before the column
    /// existed), as `insert` writes it, a batch per transaction; returns how many. Like
    /// `fold_unfolded`, it is one index lookup when there is nothing to do, and running it
    /// twice or two at once writes the same values.
    pub fn classify_untyped(conn: &mut DbConn) -> Result<usize, DbError> {
        let mut classified = 0;
        loop {
            let read = conn.transaction(|conn| {
                let rows: Vec<(String, String, String)> = files::table
                    .filter(files::type_family.eq(""))
                    .select((files::id, files::original_name, files::content_type))
                    .limit(CLASSIFY_BATCH as i64)
                    .load(conn)?;
                for (id, name, content_type) in &rows {
                    classified += diesel::update(
                        files::table
                            .filter(files::id.eq(id))
                            .filter(files::type_family.eq("")),
                    )
                    .set(files::type_family.eq(type_family(name, content_type)))
                    .execute(conn)?;
                }
                Ok::<_, diesel::result::Error>(rows.len())
            })?;
            // A family is never '', so each batch leaves fewer rows to find.
            if read < CLASSIFY_BATCH {
                return Ok(classified);
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
