-- Uploads between "object committed under its key" and "row written". The key is reserved
-- here before the object appears and released in the transaction that writes the row, so an
-- object is never served without its row (the path view answers 404 for a key listed here),
-- and a start after a crash removes the objects of uploads whose instance is gone.
CREATE TABLE pending_uploads (
    storage TEXT NOT NULL,
    storage_key TEXT NOT NULL,
    instance TEXT NOT NULL,
    -- What the upload will put there: a start removes an object only if it is this one, never
    -- a file someone else put at the key.
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    started_at TIMESTAMP NOT NULL,
    PRIMARY KEY (storage, storage_key)
);
