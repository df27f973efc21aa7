package slack

import (
	"context"
	"slices"

	"github.com/slack-go/slack"
)

// historyPage is how many messages one history call asks for.
const historyPage = 200

// history calls fn for the conversation's messages newer than oldest (a
// Slack ts), oldest first, until fn returns false: a thread's replies
// (conversations.replies), or a DM's or a channel's messages
// (conversations.history: a channel's top-level ones).
// Errors, a 429 included, are returned as they are.
func (c *Channel) history(ctx context.Context, a address, oldest string, fn func(slack.Message) bool) error {
	if a.Root != "" {
		return c.threadHistory(ctx, a, oldest, fn)
	}
	return c.channelHistory(ctx, a, oldest, fn)
}

func (c *Channel) threadHistory(ctx context.Context, a address, oldest string, fn func(slack.Message) bool) error {
	cursor := ""
	for {
		msgs, more, next, err := c.api.GetConversationRepliesContext(ctx, &slack.GetConversationRepliesParameters{
			ChannelID: a.Channel, Timestamp: a.Root, Oldest: oldest, Cursor: cursor,
			Limit: historyPage, IncludeAllMetadata: true,
		})
		c.noteAPI(err)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			// The thread's root comes first on every page, whatever oldest says.
			if !tsAfter(m.Timestamp, oldest) {
				continue
			}
			if !fn(m) {
				return nil
			}
		}
		if !more || next == "" {
			return nil
		}
		cursor = next
	}
}

// channelHistory reads all pages first: Slack returns them newest first.
func (c *Channel) channelHistory(ctx context.Context, a address, oldest string, fn func(slack.Message) bool) error {
	var all []slack.Message
	cursor := ""
	for {
		r, err := c.api.GetConversationHistoryContext(ctx, &slack.GetConversationHistoryParameters{
			ChannelID: a.Channel, Oldest: oldest, Cursor: cursor, Limit: historyPage, IncludeAllMetadata: true,
		})
		c.noteAPI(err)
		if err != nil {
			return err
		}
		all = append(all, r.Messages...)
		if !r.HasMore || r.ResponseMetaData.NextCursor == "" {
			break
		}
		cursor = r.ResponseMetaData.NextCursor
	}
	slices.SortFunc(all, func(x, y slack.Message) int { return tsTime(x.Timestamp).Compare(tsTime(y.Timestamp)) })
	for _, m := range all {
		if tsAfter(m.Timestamp, oldest) && !fn(m) {
			return nil
		}
	}
	return nil
}
