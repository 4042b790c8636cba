DROP TRIGGER share_links_access_change ON share_links;
DROP TABLE share_links;
