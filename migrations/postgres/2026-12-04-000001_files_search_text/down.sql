DROP INDEX files_search_text_unfolded;
ALTER TABLE files DROP COLUMN search_text;
