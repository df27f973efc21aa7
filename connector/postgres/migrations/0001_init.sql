-- 0001: the whole schema of the PostgreSQL store, equal in meaning to the
-- SQLite store's migrations 0001 to 0009. Timestamps are unix nanoseconds
-- (BIGINT): no parsing, no time zones, the same Go code on both stores.

CREATE TABLE conversations (
    id                  BIGSERIAL PRIMARY KEY,
    channel             TEXT    NOT NULL,
    customer            TEXT    NOT NULL,
    vendor              TEXT    NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN ('pending', 'queued', 'active', 'ended')),
    end_reason          TEXT    NOT NULL DEFAULT '',
    agent               TEXT    NOT NULL DEFAULT '',
    profile             TEXT    NOT NULL DEFAULT '{}', -- JSON connector.Profile
    session             BYTEA,                         -- the vendor's opaque JSON; NULL when none
    leave_message_after BIGINT  NOT NULL DEFAULT 0,
    reopened_at         BIGINT  NOT NULL DEFAULT 0,
    context_msg         BIGINT  NOT NULL DEFAULT 0,    -- the context line a new agent is owed first
    created_at          BIGINT  NOT NULL,
    updated_at          BIGINT  NOT NULL,
    last_activity       BIGINT  NOT NULL
);

-- At most one open conversation per customer on a channel; ended ones pile up.
CREATE UNIQUE INDEX conversations_open ON conversations (channel, customer) WHERE state <> 'ended';
-- Purge candidates, oldest first; only ended conversations are in it.
CREATE INDEX conversations_ended ON conversations (updated_at, id) WHERE state = 'ended';

-- Message ids come from a sequence, which never gives a value twice, deleted
-- rows or rolled-back inserts included: that is the high-water mark that keeps
-- a purged message's id from being used again.
CREATE TABLE messages (
    id              BIGSERIAL PRIMARY KEY,
    conversation_id BIGINT  NOT NULL REFERENCES conversations (id),
    -- channel copies the conversation's, so that delivery reports, which name
    -- (channel, remote id), find their message through one index.
    channel         TEXT    NOT NULL,
    direction       TEXT    NOT NULL CHECK (direction IN ('to_agent', 'to_customer')),
    kind            TEXT    NOT NULL,
    text            TEXT    NOT NULL DEFAULT '',
    format          TEXT    NOT NULL DEFAULT '',
    attachments     TEXT,                              -- JSON []connector.Attachment; NULL when none
    -- Byte order, as in SQLite, whatever the database's collation: a channel's
    -- newest source id is found by sorting them (Slack's sort by time), and
    -- under a linguistic collation 'a' sorts before 'B'.
    source_id       TEXT    COLLATE "C" NOT NULL DEFAULT '',
    notice          TEXT    NOT NULL DEFAULT '',
    agent           TEXT    NOT NULL DEFAULT '',
    remote_id       TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL CHECK (state IN ('stored', 'sent', 'delivered', 'failed')),
    reason          TEXT    NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,        -- sends started since the last that returned
    progress        BYTEA,                             -- the adapter's record of earlier attempts
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

CREATE INDEX messages_conversation ON messages (conversation_id, id);
-- Agent-side de-duplication: a vendor's source id once per conversation.
CREATE UNIQUE INDEX messages_source ON messages (conversation_id, source_id)
    WHERE direction = 'to_customer' AND source_id <> '';
-- The outbox: only still-stored messages are indexed, so it stays small.
CREATE INDEX messages_outbox ON messages (id) WHERE state = 'stored';
-- Delivery reports: (channel, remote id) -> message.
CREATE INDEX messages_remote ON messages (channel, remote_id) WHERE remote_id <> '';
-- Inbound de-duplication: a channel's source id is taken once, whichever
-- conversation it went to (the conversation may have ended since).
CREATE UNIQUE INDEX messages_inbound ON messages (channel, source_id)
    WHERE direction = 'to_agent' AND source_id <> '';

-- Vendor-started messages: the vendor's id for one is taken once per vendor.
CREATE TABLE outbound_keys (
    vendor     TEXT   NOT NULL,
    source_id  TEXT   NOT NULL,
    message_id BIGINT NOT NULL REFERENCES messages (id),
    PRIMARY KEY (vendor, source_id)
);
CREATE INDEX outbound_keys_message ON outbound_keys (message_id);

-- Conversations per (channel, state), kept by triggers so that metrics read a
-- handful of rows however much history is kept, whoever writes (psql too).
CREATE TABLE conversation_counts (
    channel TEXT   NOT NULL,
    state   TEXT   NOT NULL,
    n       BIGINT NOT NULL,
    PRIMARY KEY (channel, state)
);

-- SET search_path FROM CURRENT: the function finds conversation_counts in
-- the schema it was created in, whatever search_path the writing session has.
CREATE FUNCTION conversation_counts_keep() RETURNS trigger LANGUAGE plpgsql
    SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE conversation_counts SET n = n - 1 WHERE channel = OLD.channel AND state = OLD.state;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO conversation_counts (channel, state, n) VALUES (NEW.channel, NEW.state, 1)
            ON CONFLICT (channel, state) DO UPDATE SET n = conversation_counts.n + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER conversation_counts_insert AFTER INSERT ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversation_counts_keep();
-- The store rewrites state on every update; only a real change moves a count.
CREATE TRIGGER conversation_counts_update AFTER UPDATE OF channel, state ON conversations
    FOR EACH ROW WHEN (OLD.channel IS DISTINCT FROM NEW.channel OR OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION conversation_counts_keep();
CREATE TRIGGER conversation_counts_delete AFTER DELETE ON conversations
    FOR EACH ROW EXECUTE FUNCTION conversation_counts_keep();

-- The row Ping rewrites, so that Ping commits a write the way every write does.
CREATE TABLE write_probe (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    at       BIGINT  NOT NULL
);
INSERT INTO write_probe (only_row, at) VALUES (1, 0);
