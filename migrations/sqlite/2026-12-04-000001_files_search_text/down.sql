DROP INDEX files_search_text_id;
ALTER TABLE files DROP COLUMN search_text;
