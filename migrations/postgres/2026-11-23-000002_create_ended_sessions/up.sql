-- Sessions live in cookies; a logout records the session's id here until the session would
-- have expired anyway, so a copy of the cookie cannot be replayed after logging out.
CREATE TABLE ended_sessions (
    sid TEXT PRIMARY KEY NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX ended_sessions_expires_at ON ended_sessions (expires_at);
