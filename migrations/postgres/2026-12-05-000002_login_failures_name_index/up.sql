-- The per-name count, read on every login attempt, filters on `cleared` too: with it in the
-- index the count and the oldest failure come from one range scan of the index alone, where
-- the old index made every row of the name in the window be fetched from the table to test
-- `cleared`. A successful login's clearing finds its rows the same way.
DROP INDEX login_failures_username;
CREATE INDEX login_failures_username_cleared ON login_failures (username, cleared, failed_at);
