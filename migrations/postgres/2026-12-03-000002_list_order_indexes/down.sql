DROP INDEX files_size_id;
DROP INDEX files_title_id;
DROP INDEX files_uploaded_at_id;
CREATE INDEX files_uploaded_at ON files (uploaded_at);
