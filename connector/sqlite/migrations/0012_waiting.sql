-- 0012: a conversation's lines still waiting for the agent, by id, without
-- reading the rest of the outbox or the conversation's history: the Router
-- sends an older waiting line before a newer one that was queued first.
CREATE INDEX messages_waiting ON messages (conversation_id, id) WHERE state = 'stored' AND direction = 'to_agent';
