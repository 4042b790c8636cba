ALTER TABLE files DROP COLUMN thumbnails;
ALTER TABLE files DROP COLUMN image_height;
ALTER TABLE files DROP COLUMN image_width;
