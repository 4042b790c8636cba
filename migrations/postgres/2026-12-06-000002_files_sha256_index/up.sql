-- Finds the files with the same content as a new upload (the duplicate warning) without
-- scanning the table.
CREATE INDEX files_sha256 ON files (sha256);
