-- The bad deploy's migration: destructive, as a real mistake would be.
DELETE FROM notes WHERE id > 1;
UPDATE notes SET body = 'migrated';
ALTER TABLE notes ADD COLUMN priority integer;
