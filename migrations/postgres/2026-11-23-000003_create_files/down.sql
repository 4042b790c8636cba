DROP TABLE file_readers;
DROP TABLE files;
