package xima

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// chat is one live Xima chat of a conversation: its session, its cookies,
// what its queue delivered, and the context its poll runs under.
type chat struct {
	id  int64 // the conversation
	jar *jar
	log *zap.Logger

	// ctx ends when the chat stops (End, the agent's end, lost, Stop).
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	chatID   string
	queue    string
	seen     *seenRing
	lastWait time.Time // of the last wait notice told

	// commitMu makes the events that carry the session commit in the order
	// their sessions were made: a later session is never overwritten by an
	// older one.
	commitMu sync.Mutex
}

// maxSeen is how many message ids a live chat remembers (the session keeps
// the newest maxSeenStored).
const maxSeen = 256

func (v *Vendor) newChat(conv int64, st sessionState, j *jar) *chat {
	ctx, cancel := v.group.Bind(context.Background())
	return &chat{id: conv, jar: j, ctx: ctx, cancel: cancel, chatID: st.Chat, queue: st.Queue,
		seen: newSeen(st.Seen, maxSeen),
		log:  connector.LightWith(v.log, zap.Int64("conversation", conv), zap.String("chat_session", st.Chat))}
}

func (c *chat) close() { c.cancel() }

func (c *chat) closed() bool { return c.ctx.Err() != nil }

// ids returns the chat session id and queue URL.
func (c *chat) ids() (string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chatID, c.queue
}

// setQueue records a new queue URL (a session check answered another).
func (c *chat) setQueue(q string) {
	c.mu.Lock()
	c.queue = q
	c.mu.Unlock()
}

// session is the chat's state to store, with extra (a message whose effects
// the same commit stores) counted as seen.
func (c *chat) session(extra string) json.RawMessage {
	c.mu.Lock()
	st := sessionState{Chat: c.chatID, Queue: c.queue, Seen: c.seen.newest(maxSeenStored)}
	c.mu.Unlock()
	if extra != "" && !contains(st.Seen, extra) {
		st.Seen = append(st.Seen, extra)
	}
	st.Cookies = c.jar.snapshot()
	return st.marshal()
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

func (c *chat) hasSeen(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen.has(id)
}

func (c *chat) markSeen(id string) {
	c.mu.Lock()
	c.seen.add(id)
	c.mu.Unlock()
}

// commit stores e for the chat with the session (the message msgID counted
// as seen, when not ""), and marks msgID seen once stored.
func (v *Vendor) commit(ctx context.Context, c *chat, e connector.Event, msgID string) error {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	e.ConversationID = c.id
	e.Session = c.session(msgID)
	if err := v.deliver(ctx, e); err != nil {
		return err
	}
	c.markSeen(msgID)
	return nil
}

// saveCookies stores the session when the chat's cookies changed in a way
// that matters (a new or removed cookie, a changed value other than a load
// balancer's stickiness): a restart's /chat/end needs them.
func (v *Vendor) saveCookies(ctx context.Context, c *chat) {
	if !c.jar.changed() {
		return
	}
	if err := v.commit(ctx, c, connector.Event{Type: connector.EventSession}, ""); err != nil {
		c.log.Info("xima cookies not stored yet", zap.String("error", connector.RedactError(err)))
	}
}
