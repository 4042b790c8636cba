DROP INDEX files_sha256;
