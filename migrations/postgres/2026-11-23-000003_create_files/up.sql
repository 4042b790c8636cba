CREATE TABLE files (
    id TEXT PRIMARY KEY NOT NULL,
    title TEXT NOT NULL,
    original_name TEXT NOT NULL,
    -- The storage (by its configured name) and the key inside it: files of several storages
    -- live side by side, and a download finds the right backend from the row.
    storage TEXT NOT NULL,
    storage_key TEXT NOT NULL,
    size BIGINT NOT NULL,
    content_type TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    owner_id TEXT NOT NULL REFERENCES users (id),
    uploaded_by_id TEXT NOT NULL REFERENCES users (id),
    access TEXT NOT NULL CHECK (access IN ('owner', 'staff', 'authenticated', 'users')),
    uploaded_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    UNIQUE (storage, storage_key)
);
CREATE INDEX files_uploaded_at ON files (uploaded_at);
CREATE INDEX files_owner_id ON files (owner_id);

-- The users a file with the `users` rule is shared with.
CREATE TABLE file_readers (
    file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (file_id, user_id)
);
CREATE INDEX file_readers_user_id ON file_readers (user_id);
