-- 0004: how many sends of a message have started since the last one that
-- returned. A send that crashes the process never returns, so a message whose
-- count keeps growing across restarts is a poison message.
ALTER TABLE messages ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
