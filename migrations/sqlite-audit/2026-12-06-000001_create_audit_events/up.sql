-- The audit log (README: "Audit log"): one row per download decision and per change. On
-- SQLite it lives in a file of its own beside the main one (`audit.sqlite3`): every commit to
-- the main file drops the access check's cached reads, and events are written all the time.
-- Names and titles are copied in, so an event still reads right after its user or file is
-- gone; there are no foreign keys for the same reason.
CREATE TABLE audit_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TIMESTAMP NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT,
    status INTEGER,
    route TEXT,
    delivery TEXT,
    method TEXT,
    byte_range TEXT,
    user_id TEXT,
    username TEXT,
    link_id TEXT,
    file_id TEXT,
    file_name TEXT,
    storage_key TEXT,
    client TEXT,
    user_agent TEXT,
    detail TEXT
);
-- Newest first is `id` descending; each filter has an index that ends in the id, so a page is
-- a seek and a short walk however many events there are.
CREATE INDEX audit_events_at ON audit_events (at, id);
CREATE INDEX audit_events_file_id ON audit_events (file_id, id);
CREATE INDEX audit_events_username ON audit_events (username, id);
CREATE INDEX audit_events_event ON audit_events (event, id);
