package customerchannel

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// A chat the server no longer has (it restarted without keeping it, say) is
// lost, not ended: the core opens a new chat for the conversation. The spec
// says a join is answered by conversationInfo and names no answer for a
// conversation the server does not know, so the sign is silence: a join the
// server leaves unanswered for send_confirm_timeout of the reader's idle
// time, while it answers nothing else either. Two guards keep a server that
// never sends conversationInfo from costing a new chat over and over: only a
// chat the server answered before in this process, or one resumed from a
// stored session, can be lost that way; and a conversationInfo that names no
// conversation turns verdicts off for the connection.

// maxLost bounds the lost chats remembered (until the conversation's new
// chat is opened).
const maxLost = 1024

// lostChat is a chat the server no longer has.
type lostChat struct {
	conv int64
	// reported: the core was told, by EventLost or by an ErrChatLost that a
	// call returned. It is told once: a call that finds the chat lost and
	// reported gets a plain retryable error, and its retry finds the
	// conversation's new session.
	reported bool
}

// joinNote is a join emitted on connection gen, for the reader to watch.
type joinNote struct {
	chat string
	gen  uint64
}

// noteJoinLocked records that chat's join went out on connection gen and
// wakes the reader. v.mu is held.
func (v *Vendor) noteJoinLocked(chat string, gen uint64) {
	l, ok := v.live[chat]
	if v.gen != gen || !ok {
		return
	}
	l.joinGen = gen
	v.joinLog = append(v.joinLog, joinNote{chat, gen})
	select {
	case v.kick <- struct{}{}:
	default:
	}
}

// verdictDueLocked reports whether the reader will decide l's join on the
// current connection: answered, or lost by silence. v.mu is held.
func (v *Vendor) verdictDueLocked(l *live) bool {
	return v.client != nil && l.joinGen == v.gen && l.lines.histGen != v.gen && v.blindGen != v.gen &&
		(l.resumed || l.answeredBefore())
}

// answeredBefore reports whether the server has answered a join of the chat
// in this process (read, if not yet handled).
func (l *live) answeredBefore() bool { return l.answerGen != 0 || l.lines.histGen != 0 }

// answerRead records, on the reader, that connection gen's answer to a join
// of chat was read: the join is answered, though its worker may still be
// replaying the history.
func (v *Vendor) answerRead(chat string, gen uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if l, ok := v.live[chat]; ok {
		l.answerGen = gen
	}
}

// lostErrLocked is nil when chat is not lost. Otherwise it reports the loss
// to the caller once (an error wrapping connector.ErrChatLost); after that,
// a retryable error. v.mu is held.
func (v *Vendor) lostErrLocked(chat string) error {
	lc, ok := v.lost[chat]
	switch {
	case !ok:
		return nil
	case lc.reported:
		return fmt.Errorf("customerchannel: the chat server no longer has conversation %s; the core opens a new one", chat)
	}
	lc.reported = true
	return fmt.Errorf("customerchannel: the chat server no longer has conversation %s: %w", chat, connector.ErrChatLost)
}

// replacedLocked returns the lost chat that conversation conv's next Open
// replaces ("" for none). v.mu is held.
func (v *Vendor) replacedLocked(conv int64) string {
	for chat, lc := range v.lost {
		if lc.conv == conv {
			return chat
		}
	}
	return ""
}

// forgetLostLocked drops what is remembered of conv's lost chats: its new
// chat is open. v.mu is held.
func (v *Vendor) forgetLostLocked(conv int64) {
	for chat, lc := range v.lost {
		if lc.conv == conv {
			delete(v.lost, chat)
		}
	}
}

// recordLostLocked stops carrying chat and remembers it as lost. v.mu is
// held.
func (v *Vendor) recordLostLocked(chat string, conv int64, reported bool) {
	v.untrackLocked(chat)
	if len(v.lost) >= maxLost {
		for old := range v.lost {
			delete(v.lost, old)
			break
		}
	}
	v.lost[chat] = &lostChat{conv: conv, reported: reported}
}

// lose is the verdict on chat's join on connection gen: unanswered. A chat
// that may be lost (see the top of this file) is; a Resume or Send waiting
// on it reports it, else EventLost does, on the chat's worker (after the
// chat's events read before the verdict).
func (v *Vendor) lose(ctx context.Context, chat string, gen uint64) {
	v.mu.Lock()
	l, ok := v.live[chat]
	if !ok || v.gen != gen || l.answerGen == gen || l.lines.histGen == gen {
		v.mu.Unlock()
		return
	}
	if !l.resumed && !l.answeredBefore() {
		v.mu.Unlock()
		v.log.Warn("the chat server has not answered joinConversation; a chat it never answered is not taken for lost",
			zap.String("chat", chat), zap.Duration("waited", v.cfg.SendConfirmTimeout))
		return
	}
	conv, tell := l.conv, l.waiters == 0
	lostSession, _ := json.Marshal(l.s) // the core ignores the report once it has a new chat
	v.recordLostLocked(chat, conv, tell)
	v.changedLocked()
	v.mu.Unlock()
	v.log.Warn("the chat server no longer has the chat (joinConversation unanswered): the core opens a new one",
		zap.String("chat", chat), zap.Int64("conversation", conv), zap.Bool("told_by_event", tell))
	if !tell {
		return
	}
	report := func() {
		err := ctx.Err()
		if err == nil {
			err = v.sink.Event(ctx, connector.Event{ConversationID: conv, Type: connector.EventLost,
				Reason: "the chat server no longer has the chat", Session: lostSession})
		}
		if err != nil {
			v.unreported(chat, err)
		}
	}
	if !v.lanes.Go(chat, 0, report) {
		v.unreported(chat, errStopping)
	}
}

// unreported records that chat's loss did not reach the core by an event:
// the next Send or Resume of the chat reports it.
func (v *Vendor) unreported(chat string, err error) {
	v.log.Warn("lost chat not reported by event; the next Send or Resume reports it", zap.String("chat", chat), zap.Error(err))
	v.mu.Lock()
	if lc, ok := v.lost[chat]; ok {
		lc.reported = false
	}
	v.mu.Unlock()
}

// awaitAnswer waits until the server has answered a join of chat (its
// history is read), or lost it, or left the question undecidable (a
// conversationInfo naming no conversation), for Resume: the core sends the
// conversation's lines after Resume, and the history tells which of them
// the server has already.
func (v *Vendor) awaitAnswer(ctx context.Context, chat string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for {
		if err := v.lostErrLocked(chat); err != nil {
			return err
		}
		l, ok := v.live[chat]
		if !ok || l.lines.histGen != 0 || v.client != nil && v.blindGen == v.gen {
			return nil
		}
		changed := v.changed
		l.waiters++
		v.mu.Unlock()
		var err error
		select {
		case <-changed:
		case <-ctx.Done():
			err = ctx.Err()
		case <-v.quit:
			err = errStopping
		}
		v.mu.Lock()
		l.waiters--
		if err != nil {
			if lerr := v.lostErrLocked(chat); lerr != nil {
				return lerr
			}
			return fmt.Errorf("customerchannel: resume %s: no answer to joinConversation yet: %w", chat, err)
		}
	}
}

// watch is the reader's view of the joins waiting for their answer on one
// connection. An answer counts when the reader reads it, before its worker
// replays the history. Time is counted on an idle clock, which stands still
// while the reader decodes an event or, the workers being full, reads
// nothing (the core's store holds it then): an answer waiting behind a
// slow commit is not late.
type watch struct {
	timeout time.Duration
	start   time.Time
	busy    time.Duration
	since   map[string]time.Duration // chat -> idle time its join started waiting
	last    time.Duration            // idle time of the last answer
	off     bool                     // an answer named no conversation: no verdicts
	timer   *time.Timer
}

func newWatch(timeout time.Duration) *watch {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &watch{timeout: timeout, start: time.Now(), since: map[string]time.Duration{}, timer: t}
}

func (w *watch) now() time.Duration { return time.Since(w.start) - w.busy }

// deadline is when chat's join counts as unanswered: timeout after it went
// out or after the server last answered any join, whichever is later (a
// server working through many rejoins is answering).
func (w *watch) deadline(chat string) time.Duration {
	return max(w.since[chat], w.last) + w.timeout
}

// arm sets the timer for the earliest deadline and returns its channel;
// nil (blocks for ever) when no join waits.
func (w *watch) arm() <-chan time.Time {
	if w.off || len(w.since) == 0 {
		return nil
	}
	first := time.Duration(-1)
	for chat := range w.since {
		if d := w.deadline(chat); first < 0 || d < first {
			first = d
		}
	}
	w.timer.Reset(max(first-w.now(), 0))
	return w.timer.C
}

// answered records the server's answer for chat ("" when it named none).
func (w *watch) answered(chat string) {
	if chat == "" {
		w.off = true
		clear(w.since)
		return
	}
	delete(w.since, chat)
	w.last = w.now()
}

// expired removes and returns the chats whose deadline has passed.
func (w *watch) expired() []string {
	var out []string
	now := w.now()
	for chat := range w.since {
		if w.deadline(chat) <= now {
			out = append(out, chat)
			delete(w.since, chat)
		}
	}
	return out
}

// takeJoins moves the joins noted for connection gen into w: those not
// answered yet start waiting now.
func (v *Vendor) takeJoins(w *watch, gen uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, n := range v.joinLog {
		l, ok := v.live[n.chat]
		if n.gen != gen || !ok || l.answerGen == gen || w.off {
			continue
		}
		if _, waiting := w.since[n.chat]; !waiting {
			w.since[n.chat] = w.now()
		}
	}
	v.joinLog = v.joinLog[:0]
}

// blind turns verdicts off for connection gen: its server answered a join
// without naming the conversation, so silence proves nothing.
func (v *Vendor) blind(gen uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.blindGen != gen {
		v.log.Warn("conversationInfo without a conversation id: a chat the server forgot cannot be told on this connection")
	}
	v.blindGen = gen
	v.changedLocked()
}
