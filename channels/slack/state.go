package slack

import (
	"context"
	"errors"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
)

// stateReactions says which reaction a notice puts on the thread's root and
// which it takes off: the root shows where the conversation is at a glance.
func (c *Channel) stateReactions(notice string) (add string, remove []string) {
	r := c.cfg.Reactions
	switch notice {
	case "queued", "queue_position", "leave_message":
		return r.Queued, nil
	case "agent_joined", "transferred":
		return r.Active, []string{r.Queued}
	case "ended_by_agent", "ended_by_customer", "ended_timeout", "ended_failed", "no_agent", "message_left":
		return r.Ended, []string{r.Queued, r.Active}
	case "new_conversation": // the thread is live again
		return "", []string{r.Ended, r.Active}
	}
	return "", nil
}

// markState moves the root message's reactions for a notice. Only a rate
// limit or an unreachable Slack is returned (the router retries; reactions
// are idempotent); Slack refusing a reaction is logged and the notice goes
// on, since a missing emoji must not hold up the conversation. DMs have no
// root: their notices speak for themselves.
func (c *Channel) markState(ctx context.Context, a address, notice string) error {
	if a.Root == "" {
		return nil
	}
	add, remove := c.stateReactions(notice)
	item := slack.ItemRef{Channel: a.Channel, Timestamp: a.Root}
	for _, name := range remove {
		if name == "" || name == add {
			continue
		}
		if err := c.reaction(ctx, c.api.RemoveReactionContext, name, item, "no_reaction"); err != nil {
			return err
		}
	}
	if add != "" {
		return c.reaction(ctx, c.api.AddReactionContext, add, item, "already_reacted")
	}
	return nil
}

func (c *Channel) reaction(ctx context.Context, call func(context.Context, string, slack.ItemRef) error,
	name string, item slack.ItemRef, fine string) error {
	err := call(ctx, name, item)
	c.noteAPI(err)
	var rl *slack.RateLimitedError
	switch code := slackCode(err); {
	case err == nil || code == fine:
		return nil
	case errors.As(err, &rl), code == "", authCodes[code]:
		return classify(err)
	default:
		c.log.Warn("reaction refused", zap.String("name", name), zap.String("error", code))
		return nil
	}
}
