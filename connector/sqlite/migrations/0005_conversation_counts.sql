-- 0005: conversations per (channel, state), kept by triggers, so that metrics
-- read a handful of rows however much history is kept. Triggers (not the Go
-- code) keep them: every writer, an operator's sqlite3 shell included, keeps
-- them right.
CREATE TABLE conversation_counts (
    channel TEXT    NOT NULL,
    state   TEXT    NOT NULL,
    n       INTEGER NOT NULL,
    PRIMARY KEY (channel, state)
) WITHOUT ROWID;

INSERT INTO conversation_counts (channel, state, n)
    SELECT channel, state, count(*) FROM conversations GROUP BY channel, state;

CREATE TRIGGER conversation_counts_insert AFTER INSERT ON conversations
BEGIN
    INSERT INTO conversation_counts (channel, state, n) VALUES (new.channel, new.state, 1)
        ON CONFLICT (channel, state) DO UPDATE SET n = n + 1;
END;

-- The store rewrites state on every update of a conversation; only a real
-- change moves a count.
CREATE TRIGGER conversation_counts_update AFTER UPDATE OF channel, state ON conversations
    WHEN old.channel IS NOT new.channel OR old.state IS NOT new.state
BEGIN
    UPDATE conversation_counts SET n = n - 1 WHERE channel = old.channel AND state = old.state;
    INSERT INTO conversation_counts (channel, state, n) VALUES (new.channel, new.state, 1)
        ON CONFLICT (channel, state) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER conversation_counts_delete AFTER DELETE ON conversations
BEGIN
    UPDATE conversation_counts SET n = n - 1 WHERE channel = old.channel AND state = old.state;
END;

-- Its one reader was the GROUP BY count these rows replace; open
-- conversations are found through conversations_open.
DROP INDEX conversations_state;
