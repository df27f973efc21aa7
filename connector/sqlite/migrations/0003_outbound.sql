-- 0003: messages a vendor starts for a customer (a campaign SMS that a chat
-- server sends through registerConnector). Each is kept in a conversation of
-- its own, created ended, so that it is delivered and tracked like any
-- message while the customer's answer opens a normal conversation.
-- The vendor's id for the message is taken once per vendor.
CREATE TABLE outbound_keys (
    vendor     TEXT    NOT NULL,
    source_id  TEXT    NOT NULL,
    message_id INTEGER NOT NULL REFERENCES messages (id),
    PRIMARY KEY (vendor, source_id)
) WITHOUT ROWID;
