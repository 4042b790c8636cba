DROP INDEX files_type_order;
CREATE INDEX files_owner_id ON files (owner_id);
DROP INDEX files_storage_uploaded;
DROP INDEX files_owner_uploaded;
DROP INDEX files_access_uploaded;
DROP INDEX files_type_family_uploaded;
ALTER TABLE files DROP COLUMN type_family;
