-- 0002: labels a channel renders a message with.
-- notice: which notice template a KindNotice message came from, so that a
-- channel can show the state change its own way (Slack reactions).
-- agent: who wrote an agent line, so that a channel can show the name (Slack
-- posts under it).
ALTER TABLE messages ADD COLUMN notice TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN agent TEXT NOT NULL DEFAULT '';
