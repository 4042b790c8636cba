-- The PostgreSQL migration of this name adds the triggers that tell other instances to drop
-- their cached access reads. SQLite needs none: each instance asks SQLite's own
-- `PRAGMA data_version`, which changes with every commit by any other connection or process.
SELECT 1;
