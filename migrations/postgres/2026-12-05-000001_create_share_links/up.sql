-- Share links: one file handed to someone without an account. Only the SHA-256 of a link's
-- token is kept (hex), so nobody can read a link back, not even from the database. A link
-- goes with its file (ON DELETE CASCADE).
CREATE TABLE share_links (
    id TEXT PRIMARY KEY NOT NULL,
    file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    token_sha256 TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    created_by_id TEXT NOT NULL REFERENCES users (id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    -- NULL: unlimited. `downloads` only grows, by a conditional update that never passes the
    -- maximum, so two requests can never both take the last download.
    max_downloads BIGINT,
    downloads BIGINT NOT NULL DEFAULT 0,
    password_hash TEXT,
    -- Password attempts in the window that began at `password_window_at`, taken by a
    -- conditional update before each check, on every instance alike.
    password_attempts BIGINT NOT NULL DEFAULT 0,
    password_window_at TIMESTAMP,
    revoked_at TIMESTAMP,
    last_used_at TIMESTAMP
);
CREATE INDEX share_links_file_id ON share_links (file_id, created_at);
CREATE INDEX share_links_created_at ON share_links (created_at, id);

-- Instances cache links as they cache the rest of what access is decided on: a change to a
-- link (a new one, a revocation, counts written) notifies them at commit, like the triggers of
-- `notify_access_changes`.
CREATE TRIGGER share_links_access_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON share_links FOR EACH STATEMENT EXECUTE FUNCTION private_media_notify_access_change();
ALTER TABLE share_links ENABLE ALWAYS TRIGGER share_links_access_change;
