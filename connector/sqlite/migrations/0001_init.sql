-- 0001: conversations and messages.
-- Timestamps are unix nanoseconds (INTEGER): no parsing, no time zones.

CREATE TABLE conversations (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    channel             TEXT    NOT NULL,
    customer            TEXT    NOT NULL,
    vendor              TEXT    NOT NULL,
    state               TEXT    NOT NULL CHECK (state IN ('pending', 'queued', 'active', 'ended')),
    end_reason          TEXT    NOT NULL DEFAULT '',
    agent               TEXT    NOT NULL DEFAULT '',
    profile             TEXT    NOT NULL DEFAULT '{}', -- JSON connector.Profile
    session             BLOB,                          -- the vendor's opaque JSON; NULL when none
    leave_message_after INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    last_activity       INTEGER NOT NULL
);

-- At most one open conversation per customer on a channel; ended ones pile up.
CREATE UNIQUE INDEX conversations_open ON conversations (channel, customer) WHERE state != 'ended';
CREATE INDEX conversations_state ON conversations (state);

-- Not AUTOINCREMENT, which costs a write to sqlite_sequence per insert: ids
-- grow as long as the newest message is never deleted, which clean-up of old
-- conversations must respect.
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    -- channel copies the conversation's channel so that delivery reports,
    -- which name (channel, remote id), find their message through one index.
    channel         TEXT    NOT NULL,
    direction       TEXT    NOT NULL CHECK (direction IN ('to_agent', 'to_customer')),
    kind            TEXT    NOT NULL,
    text            TEXT    NOT NULL DEFAULT '',
    format          TEXT    NOT NULL DEFAULT '',
    attachments     TEXT,                              -- JSON []connector.Attachment; NULL when none
    source_id       TEXT    NOT NULL DEFAULT '',
    remote_id       TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL CHECK (state IN ('stored', 'sent', 'delivered', 'failed')),
    reason          TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

CREATE INDEX messages_conversation ON messages (conversation_id, id);
-- Agent-side de-duplication: a vendor's source id once per conversation.
CREATE UNIQUE INDEX messages_source ON messages (conversation_id, source_id)
    WHERE direction = 'to_customer' AND source_id != '';
-- The outbox: only still-stored messages are indexed, so it stays small.
CREATE INDEX messages_outbox ON messages (id) WHERE state = 'stored';
-- Delivery reports: (channel, remote id) -> message.
CREATE INDEX messages_remote ON messages (channel, remote_id) WHERE remote_id != '';

-- Inbound de-duplication: a channel's source id is taken once, whichever
-- conversation it went to (the conversation may have ended since).
CREATE UNIQUE INDEX messages_inbound ON messages (channel, source_id)
    WHERE direction = 'to_agent' AND source_id != '';
