package sqlstore

import (
	"fmt"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/internal/sqlrow"
)

// queries are the store's statements bound to one dialect. They are written
// with '?' and "{index NAME}" (see Dialect.Bind); the statement caches key
// on the bound text, which stays the same for the life of the store.
type queries struct {
	writeProbe string

	// stats.go. TestQueryPlans (connector/sqlite) checks that none of what
	// metrics run on every scrape scans conversations or messages.
	stateCounts, openCounts, outboxStats string
	// purge.go; the deletes go children first.
	purgeCandidates, purgeOutboundKeys, purgeMessages, purgeConversations string
	// progress.go, attempts.go
	sendProgress, saveProgress, countAttempt, clearAttempts string
	// delivery.go
	markSent, markFailed, contextSettled, messageExists, byRemoteID, setDelivery string
	// read.go
	conversation, openConversations, ownedOpen, openCursors, newestSourceID string
	messages, outbox, ownedOutbox, message                                  string
	waitingBefore, anyWaitingBefore, allWaiting                             string
	// inbound.go, outbound.go
	openOf, inboundDuplicate, createConversation, touchInbound             string
	outboundTaken, outboundKey, outboundTarget, createOutboundConversation string
	// apply.go
	waitingCount, moveWaiting, lastMessageID, updateConversation, insertMessage, failPending string
	// optout.go
	optOut, optIn, optedOut, allOptOuts, lastReceived string
	// admin.go
	listConversations, listOpen, listStuck, recentFailures, retryMessage string
}

func newQueries(d *Dialect) *queries {
	in := func(column string) string { return fmt.Sprintf(d.InIDs, column) }
	q := queries{
		writeProbe: d.WriteProbe,

		stateCounts: `SELECT state, sum(n) FROM conversation_counts GROUP BY state`,
		openCounts:  `SELECT state, n FROM conversation_counts WHERE channel = ? AND state != 'ended'`,
		// The count reads only the messages_outbox index; the oldest message is its first entry.
		outboxStats: `SELECT (SELECT count(*) FROM messages WHERE state = 'stored'),
		(SELECT created_at FROM messages WHERE state = 'stored' ORDER BY id LIMIT 1)`,

		// The candidates come from conversations_ended, oldest first.
		purgeCandidates: `SELECT c.id FROM conversations c{index conversations_ended}
	WHERE c.state = 'ended' AND c.updated_at < ?
		AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.state = 'stored')
	ORDER BY c.updated_at, c.id LIMIT ?`,
		purgeOutboundKeys: `DELETE FROM outbound_keys WHERE message_id IN (SELECT id FROM messages
		WHERE ` + in("conversation_id") + `)`,
		purgeMessages:      `DELETE FROM messages WHERE ` + in("conversation_id"),
		purgeConversations: `DELETE FROM conversations WHERE ` + in("id"),

		sendProgress:  `SELECT progress FROM messages WHERE id = ?`,
		saveProgress:  `UPDATE messages SET progress = ? WHERE id = ? AND state = 'stored'`,
		countAttempt:  `UPDATE messages SET attempts = attempts + 1 WHERE id = ? RETURNING attempts`,
		clearAttempts: `UPDATE messages SET attempts = 0 WHERE id = ?`,

		// Both return the kind of the message they changed, none when they
		// changed none.
		markSent: `UPDATE messages SET state = 'sent', remote_id = ?, updated_at = ?, progress = NULL
			WHERE id = ? AND state = 'stored' RETURNING kind`,
		markFailed: `UPDATE messages SET state = 'failed', reason = ?, updated_at = ?, progress = NULL
			WHERE id = ? AND state IN ('stored', 'sent') RETURNING kind`,
		// Two primary-key lookups; the message id is both parameters. The
		// conversation it changed, if any, comes back for the writer's cache.
		contextSettled: `UPDATE conversations SET context_msg = 0
		WHERE id = (SELECT conversation_id FROM messages WHERE id = ?) AND context_msg = ? RETURNING id`,
		messageExists: `SELECT 1 FROM messages WHERE id = ?`,
		// "remote_id <> ''" lets the planner use the partial index
		// messages_remote: with a bound parameter alone it cannot prove the
		// index's condition, and SQLite scanned every message.
		byRemoteID: `SELECT id, state FROM messages
		WHERE channel = ? AND remote_id = ? AND remote_id <> '' AND direction = 'to_customer' ORDER BY id DESC LIMIT 1`,
		setDelivery: `UPDATE messages SET state = ?, reason = ?, updated_at = ? WHERE id = ?`,

		conversation: `SELECT ` + sqlrow.ConversationColumns + ` FROM conversations WHERE id = ?`,
		// Through the partial index that holds only the open conversations.
		openConversations: `SELECT ` + sqlrow.ConversationColumns + ` FROM conversations{index conversations_open}
	WHERE state != 'ended' ORDER BY id`,
		// Through conversations_owner (owner, id), which holds only open ones.
		ownedOpen: `SELECT ` + sqlrow.ConversationColumns + ` FROM conversations
	WHERE owner = ? AND state != 'ended' ORDER BY id`,
		// The subquery walks messages_conversation backwards from the newest message.
		openCursors: `SELECT c.id, c.customer, c.state, coalesce((SELECT m.source_id FROM messages m
			WHERE m.conversation_id = c.id AND m.direction = 'to_agent' AND m.source_id != ''
			ORDER BY m.id DESC LIMIT 1), '')
		FROM conversations c WHERE c.channel = ? AND c.state != 'ended' ORDER BY c.id`,
		// A backwards walk of the messages_inbound index, bounded by the prefix's range.
		newestSourceID: `SELECT source_id FROM messages
		WHERE channel = ? AND direction = 'to_agent' AND source_id != '' AND source_id >= ? AND source_id < ?
		ORDER BY source_id DESC LIMIT 1`,
		messages: `SELECT ` + sqlrow.MessageColumns + ` FROM messages WHERE conversation_id = ? ORDER BY id`,
		outbox:   `SELECT ` + sqlrow.MessageColumns + ` FROM messages WHERE state = 'stored' ORDER BY id`,
		waitingBefore: `SELECT ` + sqlrow.MessageColumns + ` FROM messages{index messages_conversation}
		WHERE conversation_id = ? AND state = 'stored' AND direction = 'to_agent' AND id < ? ORDER BY id`,
		// The same range of the same index, one column: it reads the index
		// only, and a driver that describes every column of a result
		// (modernc's) describes one.
		anyWaitingBefore: `SELECT id FROM messages{index messages_conversation}
		WHERE conversation_id = ? AND state = 'stored' AND direction = 'to_agent' AND id < ? LIMIT 1`,
		// What the waiting set holds, through the same partial index.
		allWaiting: `SELECT id, conversation_id FROM messages{index messages_outbox}
		WHERE state = 'stored' AND direction = 'to_agent'`,
		ownedOutbox: `SELECT ` + qualified("m", sqlrow.MessageColumns) + `
			FROM messages m JOIN conversations c ON c.id = m.conversation_id
			WHERE m.state = 'stored' AND c.owner = ? ORDER BY m.id`,
		message: `SELECT ` + sqlrow.MessageColumns + ` FROM messages WHERE id = ?`,

		openOf: `SELECT ` + sqlrow.ConversationColumns + ` FROM conversations
		WHERE channel = ? AND customer = ? AND state != 'ended'`,
		inboundDuplicate: `SELECT ` + sqlrow.MessageColumns + ` FROM messages
		WHERE channel = ? AND source_id = ? AND direction = 'to_agent' AND source_id != ''`,
		createConversation: `INSERT INTO conversations
		(channel, customer, vendor, state, profile, created_at, updated_at, last_activity, owner)
		VALUES (?, ?, ?, 'pending', ?, ?, ?, ?, ?) RETURNING id`,
		touchInbound:   `UPDATE conversations SET profile = ?, last_activity = ?, updated_at = ? WHERE id = ?`,
		outboundTaken:  `SELECT count(*) FROM outbound_keys WHERE vendor = ? AND source_id = ?`,
		outboundKey:    `INSERT INTO outbound_keys (vendor, source_id, message_id) VALUES (?, ?, ?)`,
		outboundTarget: `SELECT channel, customer FROM conversations WHERE id = ?`,
		createOutboundConversation: `INSERT INTO conversations
		(channel, customer, vendor, state, end_reason, created_at, updated_at, last_activity, owner)
		VALUES (?, ?, ?, 'ended', 'outbound', ?, ?, ?, ?) RETURNING id`,

		waitingCount: `SELECT count(*) FROM messages{index messages_conversation}
		WHERE conversation_id = ? AND direction = 'to_agent' AND kind = 'text' AND state = 'stored'`,
		moveWaiting: `UPDATE messages SET conversation_id = ?, updated_at = ?, progress = NULL
		WHERE conversation_id = ? AND direction = 'to_agent' AND kind = 'text' AND state = 'stored'
		RETURNING ` + sqlrow.MessageColumns,
		lastMessageID: `SELECT coalesce(max(id), 0) FROM messages WHERE conversation_id = ?`,
		updateConversation: `UPDATE conversations SET state = ?, end_reason = ?, agent = ?, session = ?,
		leave_message_after = ?, reopened_at = ?, context_msg = ?, last_activity = ?, updated_at = ? WHERE id = ?`,
		// A repeated source id hits a unique index and inserts nothing: no row returned.
		insertMessage: `INSERT INTO messages
		(id, conversation_id, channel, direction, kind, text, format, attachments, source_id, notice, agent, state, created_at, updated_at)
		VALUES (` + d.NewMessageID + `, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'stored', ?, ?)
		ON CONFLICT DO NOTHING RETURNING id`,
		failPending: `UPDATE messages SET state = 'failed', reason = ?, updated_at = ?, progress = NULL
		WHERE conversation_id = ? AND direction = 'to_agent' AND state = 'stored' AND kind != 'end'
		RETURNING ` + sqlrow.MessageColumns,

		optOut:     `INSERT INTO opt_outs (channel, sender, customer, at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		optIn:      `DELETE FROM opt_outs WHERE channel = ? AND sender = ? AND customer = ?`,
		optedOut:   `SELECT 1 FROM opt_outs WHERE channel = ? AND sender = ? AND customer = ?`,
		allOptOuts: `SELECT channel, sender, customer FROM opt_outs`,
		// Ids grow with time: the newest customer message has the greatest.
		lastReceived: `SELECT source_id, created_at FROM messages{index messages_received}
		WHERE channel = ? AND direction = 'to_agent' AND source_id != '' ORDER BY id DESC LIMIT 1`,
	}
	q.listConversations, q.listOpen, q.listStuck = listQueries()
	q.recentFailures = `SELECT ` + sqlrow.MessageColumns + ` FROM messages{index messages_failed}
		WHERE state = 'failed' AND updated_at >= ? ORDER BY updated_at DESC, id DESC LIMIT ?`
	q.retryMessage = `UPDATE messages SET state = 'stored', reason = '', remote_id = '', progress = NULL,
		attempts = 0, updated_at = ? WHERE id = ? AND state = 'failed' RETURNING ` + sqlrow.MessageColumns
	for _, p := range q.all() {
		*p = d.Bind(*p)
	}
	return &q
}

// all returns every query, to bind them.
func (q *queries) all() []*string {
	return []*string{&q.writeProbe,
		&q.stateCounts, &q.openCounts, &q.outboxStats,
		&q.purgeCandidates, &q.purgeOutboundKeys, &q.purgeMessages, &q.purgeConversations,
		&q.sendProgress, &q.saveProgress, &q.countAttempt, &q.clearAttempts,
		&q.markSent, &q.markFailed, &q.contextSettled, &q.messageExists, &q.byRemoteID, &q.setDelivery,
		&q.conversation, &q.openConversations, &q.ownedOpen, &q.openCursors, &q.newestSourceID,
		&q.messages, &q.outbox, &q.ownedOutbox, &q.message, &q.waitingBefore, &q.anyWaitingBefore, &q.allWaiting,
		&q.openOf, &q.inboundDuplicate, &q.createConversation, &q.touchInbound,
		&q.outboundTaken, &q.outboundKey, &q.outboundTarget, &q.createOutboundConversation,
		&q.waitingCount, &q.moveWaiting, &q.lastMessageID, &q.updateConversation, &q.insertMessage, &q.failPending,
		&q.optOut, &q.optIn, &q.optedOut, &q.allOptOuts, &q.lastReceived,
		&q.listConversations, &q.listOpen, &q.listStuck, &q.recentFailures, &q.retryMessage,
	}
}

// HotQuery is a query that runs on every metrics scrape, inactivity sweep
// or retention pass, bound to a dialect, with arguments to plan it with.
type HotQuery struct {
	Query string
	Args  []any
}

// HotQueries returns, by name, the queries whose cost must not grow with
// the history kept, bound to d: an engine's test checks their plans.
func HotQueries(d *Dialect) (map[string]HotQuery, error) {
	q := newQueries(d)
	ids, err := d.IDList([]int64{1})
	if err != nil {
		return nil, err
	}
	return map[string]HotQuery{
		"Stats conversations": {q.stateCounts, nil},
		"Stats outbox":        {q.outboxStats, nil},
		"OpenCounts":          {q.openCounts, []any{"sms.main"}},
		"OpenConversations":   {q.openConversations, nil},
		"Purge candidates":    {q.purgeCandidates, []any{0, 10}},
		"Purge outbound keys": {q.purgeOutboundKeys, []any{ids}},
		"Purge messages":      {q.purgeMessages, []any{ids}},
		"Purge conversations": {q.purgeConversations, []any{ids}},
		// Not scrapes, but once for every line to an agent.
		"WaitingBefore":       {q.waitingBefore, []any{1, 10}},
		"WaitingBefore probe": {q.anyWaitingBefore, []any{1, 10}},
		// Once for every delivery report (Twilio posts two for each SMS).
		"UpdateDelivery lookup": {q.byRemoteID, []any{"sms.main", "SM1"}},
		// Once or more for every customer message.
		"Open conversation of a customer": {q.openOf, []any{"sms.main", "+15550001111"}},
		"Inbound duplicate":               {q.inboundDuplicate, []any{"sms.main", "SM1"}},
		"Opted out":                       {q.optedOut, []any{"sms.main", "+15550001111", "+15550002222"}},
		"Conversation":                    {q.conversation, []any{1}},
		"Message":                         {q.message, []any{1}},
		"Last received":                   {q.lastReceived, []any{"sms.main"}},
		// Once for every admin API request (status page, operator CLI).
		"List conversations": {q.listConversations, listArgs(connector.ConversationQuery{Limit: 100})},
		"List open":          {q.listOpen, listArgs(connector.ConversationQuery{Open: true, Limit: 100})},
		"List stuck": {q.listStuck, append([]any{int64(0), int64(0)},
			listArgs(connector.ConversationQuery{Limit: 100})...)},
		"Recent failures": {q.recentFailures, []any{int64(0), 20}},
	}, nil
}
