-- API tokens: a user's key for the JSON API under /api/v1/. Only the SHA-256 of a token is
-- kept (hex), looked up by that digest, so nobody can read a token back, not even from the
-- database. A token goes with its user (ON DELETE CASCADE; the user delete removes them too).
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_sha256 TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    -- NULL: never expires.
    expires_at TIMESTAMP,
    -- Written at most once a minute per token, not on every request.
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX api_tokens_user_id ON api_tokens (user_id, created_at);
CREATE INDEX api_tokens_created_at ON api_tokens (created_at, id);
