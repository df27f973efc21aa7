-- 0003: customers who opted out of a channel's messages (an SMS STOP), per
-- sender (our number or messaging service) and customer; opting back in
-- deletes the row. And an index that finds a channel's newest customer
-- message (SMS catch-up starts there) without scanning the messages.
CREATE TABLE opt_outs (
    channel  TEXT   NOT NULL,
    sender   TEXT   NOT NULL,
    customer TEXT   NOT NULL,
    at       BIGINT NOT NULL,
    PRIMARY KEY (channel, sender, customer)
);

CREATE INDEX messages_received ON messages (channel, id) WHERE direction = 'to_agent' AND source_id <> '';
