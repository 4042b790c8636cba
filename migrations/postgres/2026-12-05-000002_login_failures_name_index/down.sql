DROP INDEX login_failures_username_cleared;
CREATE INDEX login_failures_username ON login_failures (username, failed_at);
