-- The type family the lists filter on (image, document, audio, video, archive, other), from
-- the name and the sniffed type together (src/domain/file_type.rs). Rows from before this
-- column have '' until the app classifies them, right after the migrations run.
ALTER TABLE files ADD COLUMN type_family TEXT NOT NULL DEFAULT '';
-- One index per filter, each in the newest-first order and ending in the id, so a filtered
-- page is read from its index without sorting the table (README: "Performance"). The owner's
-- one replaces files_owner_id, its prefix.
CREATE INDEX files_type_family_uploaded ON files (type_family, uploaded_at, id);
CREATE INDEX files_access_uploaded ON files (access, uploaded_at, id);
CREATE INDEX files_owner_uploaded ON files (owner_id, uploaded_at, id);
CREATE INDEX files_storage_uploaded ON files (storage, uploaded_at, id);
DROP INDEX files_owner_id;
-- The type order: by family, then the sniffed type.
CREATE INDEX files_type_order ON files (type_family, content_type, id);
