DROP TRIGGER pending_uploads_access_change ON pending_uploads;
DROP TRIGGER file_readers_access_change ON file_readers;
DROP TRIGGER files_access_change ON files;
DROP TRIGGER ended_sessions_access_change ON ended_sessions;
DROP TRIGGER users_access_change ON users;
DROP FUNCTION private_media_notify_access_change();
