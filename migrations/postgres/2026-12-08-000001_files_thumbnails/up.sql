-- An image's own width and height, read when its thumbnails were made, and whether they
-- were (src/thumbnails/): a file without them shows a type icon, and its thumbnail route
-- answers 404 without asking the storage. Rows from before have none until
-- `private-media thumbnails --missing` makes them.
ALTER TABLE files ADD COLUMN image_width INTEGER;
ALTER TABLE files ADD COLUMN image_height INTEGER;
ALTER TABLE files ADD COLUMN thumbnails BOOLEAN NOT NULL DEFAULT FALSE;
