-- 0002: several connectord instances on one database. Every conversation
-- that is open, or ended with a message still to send, has an owner: the one
-- instance that serves it. Instances hold leases they renew; a conversation
-- whose owner's lease lapsed is claimed by another instance.

-- '' is nobody: a store used by one instance, or a conversation handed back.
ALTER TABLE conversations ADD COLUMN owner TEXT NOT NULL DEFAULT '';
-- An instance's open conversations, and those of the instances that died
-- (Claim reads them by owner). Ended conversations that still have a message
-- to send are few and found through messages_outbox instead.
CREATE INDEX conversations_owner ON conversations (owner, id) WHERE state <> 'ended';

-- One row per instance lease (kind 'instance', name = holder = the instance
-- id) and per role lease (kind 'role', name = the role, holder = the
-- instance that leads it). epoch is random per Join: a second process joining
-- under the same id replaces it, and the first one's renewals then fail. A
-- claimer that takes a dead instance's conversations sets its epoch to 0 (no
-- Join gives 0), so that a late renewal of that lease fails too.
--
-- expires_at is computed and compared on the database's clock only (now(),
-- clock_timestamp()), never on an instance's: instances' clocks differ. That
-- is why it is a timestamptz where every other time is Go's unix nanoseconds.
CREATE TABLE leases (
    kind       TEXT        NOT NULL CHECK (kind IN ('instance', 'role')),
    name       TEXT        NOT NULL,
    holder     TEXT        NOT NULL,
    epoch      BIGINT      NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, name)
);

-- Wakes the owner of a conversation when another instance stores a message
-- in it (a customer line taken by another instance's webhook, an end the
-- customer asked for, lines moved to a next conversation). The writing
-- instance is the session's connectord.instance setting, which the store sets
-- on every connection it opens; a session without it (psql) writes as ''.
--
-- The payload is "wake <conversation> <owner> <writer>"; "claimable <writer>"
-- when the conversation has no owner (handed back and not claimed yet), so
-- that the other instances claim it. NOTIFY is delivered when the writing
-- transaction commits, never before and never without it: a listener that is
-- woken finds the message committed, and a commit is never left unannounced.
--
-- In a cluster session the owner is read under a row lock, so that the wake
-- names the owner as of this transaction's commit: a claim or a hand-back of
-- the conversation either commits first (and is read here) or waits for this
-- commit (and the claimer then reads the message). FOR NO KEY UPDATE, the
-- lock the store's own update of the conversation takes anyway in the same
-- transaction: a weaker share lock would let two instances writing to one
-- conversation each hold one and deadlock when both upgrade it.
CREATE FUNCTION messages_wake_owner() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
DECLARE
    writer TEXT := coalesce(current_setting('connectord.instance', true), '');
    owned  TEXT;
BEGIN
    IF writer = '' THEN
        SELECT owner INTO owned FROM conversations WHERE id = NEW.conversation_id;
    ELSE
        SELECT owner INTO owned FROM conversations WHERE id = NEW.conversation_id FOR NO KEY UPDATE;
    END IF;
    IF owned IS NULL OR owned = writer THEN
        RETURN NULL;
    END IF;
    IF owned = '' THEN
        PERFORM pg_notify(left('connectord.' || TG_TABLE_SCHEMA, 63), 'claimable ' || writer);
    ELSE
        PERFORM pg_notify(left('connectord.' || TG_TABLE_SCHEMA, 63),
            'wake ' || NEW.conversation_id || ' ' || owned || ' ' || writer);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER messages_wake_insert AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.state = 'stored') EXECUTE FUNCTION messages_wake_owner();
-- Change.Move moves waiting lines to the customer's next conversation.
CREATE TRIGGER messages_wake_move AFTER UPDATE OF conversation_id ON messages
    FOR EACH ROW WHEN (NEW.state = 'stored' AND OLD.conversation_id IS DISTINCT FROM NEW.conversation_id)
    EXECUTE FUNCTION messages_wake_owner();
