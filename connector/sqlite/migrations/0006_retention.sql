-- 0006: deleting old ended conversations (connector.Store.Purge).

-- Candidates, oldest first. Only ended conversations are in it, and those are
-- rarely updated, so touching an open conversation costs nothing here.
CREATE INDEX conversations_ended ON conversations (updated_at) WHERE state = 'ended';

-- Purge deletes a message's outbound key with it; the foreign key check on
-- deleting a message needs this index too, or it scans outbound_keys.
CREATE INDEX outbound_keys_message ON outbound_keys (message_id);

-- Message ids are never used again (0001): without AUTOINCREMENT SQLite would
-- give the next message max(id)+1, which reuses the id of a deleted newest
-- message. New messages take their id above both max(id) and this floor, the
-- highest id ever deleted, which a trigger keeps for every deletion.
CREATE TABLE message_id_floor (
    only INTEGER PRIMARY KEY CHECK (only = 1),
    id   INTEGER NOT NULL
);
INSERT INTO message_id_floor (only, id) SELECT 1, coalesce(max(id), 0) FROM messages;

CREATE TRIGGER message_id_floor_delete AFTER DELETE ON messages
    WHEN old.id > (SELECT id FROM message_id_floor)
BEGIN
    UPDATE message_id_floor SET id = old.id;
END;
