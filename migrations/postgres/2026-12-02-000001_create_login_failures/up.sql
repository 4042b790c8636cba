-- Failed logins, one row each, shared by every instance of the site. A row counts against its
-- name until that name logs in (`cleared`) and against its address for the whole window; rows
-- older than the window are deleted as new failures come in, so the table stays small.
CREATE TABLE login_failures (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL,
    address TEXT,
    cleared BOOLEAN NOT NULL DEFAULT FALSE,
    failed_at TIMESTAMP NOT NULL
);
-- "Failures of this name in the window" and "names that failed from this address in the
-- window" are each one range scan of one index.
CREATE INDEX login_failures_username ON login_failures (username, failed_at);
CREATE INDEX login_failures_address ON login_failures (address, failed_at, username);
CREATE INDEX login_failures_failed_at ON login_failures (failed_at);
