-- The v1 data of the notes service (valid SQL for SQLite and PostgreSQL).
CREATE TABLE notes (id integer PRIMARY KEY, body text NOT NULL);
INSERT INTO notes (id, body) VALUES (1, 'buy milk'), (2, 'call the plumber'), (3, 'renew the certificate');
