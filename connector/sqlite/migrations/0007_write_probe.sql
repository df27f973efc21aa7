-- 0007: the row Ping rewrites, so that Ping commits a write the way every
-- write commits and a disk that refuses writes fails it.
CREATE TABLE write_probe (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    at   INTEGER NOT NULL
);
INSERT INTO write_probe (only, at) VALUES (1, 0);
