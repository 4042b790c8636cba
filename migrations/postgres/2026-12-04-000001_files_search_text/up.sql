-- The folded title and original name that search compares against (src/domain/search_text.rs;
-- lower() depends on the database's locale). Rows from before this column have '' until the
-- app folds them, right after the migrations run: a folded value is never empty.
ALTER TABLE files ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
-- No B-tree on search_text itself, as on SQLite: a title may be up to 64 KiB, past the size
-- of a B-tree entry here, and a LIKE '%…%' scan reads the table anyway. This one finds the
-- rows not yet folded, and is empty once they are.
CREATE INDEX files_search_text_unfolded ON files (id) WHERE search_text = '';
