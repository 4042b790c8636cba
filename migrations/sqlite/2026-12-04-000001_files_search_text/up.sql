-- The folded title and original name that search compares against (src/domain/search_text.rs;
-- SQLite's lower() folds ASCII only). Rows from before this column have '' until the app folds
-- them, right after the migrations run: a folded value is never empty.
ALTER TABLE files ADD COLUMN search_text TEXT NOT NULL DEFAULT '';
-- A search (LIKE '%…%') cannot seek, but it can scan this narrow index instead of the wide
-- table, and find the page's ids in it; the rows not yet folded are found through it too.
CREATE INDEX files_search_text_id ON files (search_text, id);
