-- 0013: failed messages by when they failed, for the admin API's recent
-- failures and its stuck conversations. Partial: it holds failed messages
-- only (kept until retention deletes their conversation), not the history.
CREATE INDEX messages_failed ON messages (updated_at) WHERE state = 'failed';
