-- 0014: messages_waiting goes. The writer keeps the lines to the agent
-- still stored in memory (the store's waiting set), so the question asked
-- for every line, whether an older one waits, no longer reads the index;
-- it cost a page of every commit that stores or sends such a line. When one
-- waits, messages_conversation finds the lines, and the set is loaded from
-- messages_outbox at open.
DROP INDEX messages_waiting;
