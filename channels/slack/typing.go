package slack

import (
	"context"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"
)

// typingType marks the one "typing…" message an agent's typing shows in a
// conversation, so that a later start (catch-up) can remove one a dead
// process left behind.
const typingType = "connectord_typing"

// typingText is what the indicator says.
const typingText = "_typing…_"

// ShowTyping shows that the agent is typing as a single message in the
// thread (or DM), posted when typing starts and deleted when it stops or
// the agent's line arrives: never more than one, and only when the channel's
// pacing has room at once, so that it never delays a real message. It does
// not block; failures are logged at debug level only.
func (c *Channel) ShowTyping(ctx context.Context, to string, on bool) {
	a, err := parseAddress(to)
	if err != nil {
		return
	}
	c.mu.Lock()
	if c.cancel == nil || c.stopped {
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	queued := c.typingLanes.TryGo(to, 0, func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.RequestTimeout)
		defer cancel()
		if on {
			c.typingOn(ctx, a)
		} else {
			c.typingOff(ctx, a)
		}
	})
	if !queued {
		c.log.Debug("typing indicator change dropped: too many waiting", zap.String("customer", to))
	}
}

// maxTypingQueued bounds typing changes waiting for Slack: they are
// cosmetic, and dropped past it.
const maxTypingQueued = 1000

func (c *Channel) typingOn(ctx context.Context, a address) {
	c.mu.Lock()
	_, shown := c.typing.get(a, time.Now())
	c.mu.Unlock()
	if shown || !c.pace.try(a.Channel) {
		return
	}
	opts := []slack.MsgOption{slack.MsgOptionText(typingText, false),
		slack.MsgOptionMetadata(slack.SlackMetadata{EventType: typingType, EventPayload: map[string]any{"channel": c.name}})}
	if a.Root != "" {
		opts = append(opts, slack.MsgOptionTS(a.Root))
	}
	_, ts, err := c.api.PostMessageContext(ctx, a.Channel, opts...)
	if err != nil {
		c.log.Debug("typing indicator not posted", zap.Error(err))
		return
	}
	c.mu.Lock()
	c.typing.put(a, ts, time.Now())
	c.mu.Unlock()
}

func (c *Channel) typingOff(ctx context.Context, a address) {
	c.mu.Lock()
	ts, shown := c.typing.get(a, time.Now())
	c.typing.remove(a)
	c.mu.Unlock()
	if shown {
		c.deleteTyping(ctx, a.Channel, ts)
	}
}

// clearTyping removes the indicator before an agent's line is posted, on the
// typing lane so that it cannot race a "typing on" still in flight.
func (c *Channel) clearTyping(ctx context.Context, a address) {
	c.mu.Lock()
	_, shown := c.typing.get(a, time.Now())
	c.mu.Unlock()
	if !shown {
		return
	}
	done := make(chan struct{})
	c.typingLanes.Go(a.String(), 0, func() { defer close(done); c.typingOff(ctx, a) })
	select {
	case <-done:
	case <-ctx.Done():
	case <-time.After(c.cfg.RequestTimeout):
	}
}

func (c *Channel) deleteTyping(ctx context.Context, channel, ts string) {
	if _, _, err := c.api.DeleteMessageContext(ctx, channel, ts); err != nil && slackCode(err) != "message_not_found" {
		c.log.Debug("typing indicator not deleted", zap.Error(err))
	}
}
