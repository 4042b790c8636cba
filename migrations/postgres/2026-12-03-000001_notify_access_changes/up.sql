-- Every instance keeps an exact in-process cache of what the access check reads (users, ended
-- sessions, files and their readers) and LISTENs on this channel. A change to one of these
-- tables, by any instance or command, notifies every listener when its transaction commits;
-- they then drop their cached reads (README: "Performance", the cache's guarantee).
CREATE FUNCTION private_media_notify_access_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('private_media_access', TG_TABLE_NAME);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER users_access_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION private_media_notify_access_change();
CREATE TRIGGER ended_sessions_access_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON ended_sessions FOR EACH STATEMENT EXECUTE FUNCTION private_media_notify_access_change();
CREATE TRIGGER files_access_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON files
    FOR EACH STATEMENT EXECUTE FUNCTION private_media_notify_access_change();
CREATE TRIGGER file_readers_access_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON file_readers FOR EACH STATEMENT EXECUTE FUNCTION private_media_notify_access_change();
CREATE TRIGGER pending_uploads_access_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
    ON pending_uploads FOR EACH STATEMENT EXECUTE FUNCTION private_media_notify_access_change();

-- ALWAYS: they fire also with `session_replication_role = replica` (pg_restore
-- --disable-triggers, logical replication). Only `ALTER TABLE … DISABLE TRIGGER` stops them,
-- and the README says not to.
ALTER TABLE users ENABLE ALWAYS TRIGGER users_access_change;
ALTER TABLE ended_sessions ENABLE ALWAYS TRIGGER ended_sessions_access_change;
ALTER TABLE files ENABLE ALWAYS TRIGGER files_access_change;
ALTER TABLE file_readers ENABLE ALWAYS TRIGGER file_readers_access_change;
ALTER TABLE pending_uploads ENABLE ALWAYS TRIGGER pending_uploads_access_change;
