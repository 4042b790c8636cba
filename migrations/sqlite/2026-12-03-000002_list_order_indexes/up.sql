-- One index per list order, each ending in the id that breaks ties, so a page of any order is
-- read from the index without sorting the table, and a deep page skips index entries only
-- (the page's ids are found first, then their rows; README: "Performance").
DROP INDEX files_uploaded_at;
CREATE INDEX files_uploaded_at_id ON files (uploaded_at, id);
CREATE INDEX files_title_id ON files (lower(title), id);
CREATE INDEX files_size_id ON files (size, id);
