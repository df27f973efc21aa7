-- 0005: failed messages by when they failed, for the admin API's recent
-- failures and its stuck conversations. Partial: it holds failed messages
-- only (kept until retention deletes their conversation), not the history.
CREATE INDEX messages_failed ON messages (updated_at) WHERE state = 'failed';

-- An operator's retry moves a failed message back to stored on whichever
-- instance took the request: the conversation's owner is woken as for a new
-- message, instead of finding it at its next outbox sweep.
CREATE TRIGGER messages_wake_retry AFTER UPDATE OF state ON messages
    FOR EACH ROW WHEN (NEW.state = 'stored' AND OLD.state IS DISTINCT FROM 'stored')
    EXECUTE FUNCTION messages_wake_owner();
