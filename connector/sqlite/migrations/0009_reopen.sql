-- 0009: a vendor that lost a chat gets a new one for the same conversation.
-- reopened_at bounds how often (a chat lost again soon after is ended);
-- context_msg is the context line the new agent is owed first (0: none).
ALTER TABLE conversations ADD COLUMN reopened_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN context_msg INTEGER NOT NULL DEFAULT 0;
