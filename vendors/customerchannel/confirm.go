package customerchannel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/vendors/customerchannel/sio"
)

// A customer line counts as delivered only once the server shows it has it:
// its echo (the server broadcasts every ChatMessage it accepts to the room,
// sender included) or its presence in the history a join replays. A frame
// written to a server that dies before storing it is never confirmed, so it
// is emitted again on the next connection.

// idPrefix makes a sendMessage id out of a message id; the echo and the
// history carry it back.
const idPrefix = "connectord-"

// maxConfirmed bounds the confirmed ids a conversation remembers. The core
// repeats only the message it is sending (one at a time per conversation,
// in order), so the newest few are all a repeated Send can ask about.
const maxConfirmed = 32

// lines is what one conversation knows of the customer lines it sent.
type lines struct {
	// pending is the line emitted and not confirmed yet (0: none), gen the
	// connection it went out on and text its text (for a server that
	// replaces our id in its echo).
	pending int64
	gen     uint64
	text    string
	// confirmed holds the newest confirmed ids, oldest first.
	confirmed []int64
	// histGen is the last connection whose history of the conversation has
	// been read.
	histGen uint64
}

// step is what Send does next for a line.
type step int

const (
	stepDone step = iota // confirmed: nothing to do
	stepEmit             // emit it (again) on the current connection
	stepWait             // wait for its echo or for the rejoin's history
)

// next decides a line's step on connection gen.
func (ls *lines) next(id int64, gen uint64) step {
	switch {
	case slices.Contains(ls.confirmed, id):
		return stepDone
	case ls.pending != id:
		return stepEmit // never emitted by this process
	case ls.gen == gen:
		return stepWait // out on this connection: its echo comes on it
	case ls.histGen == gen:
		return stepEmit // this connection's history does not have it: lost
	default:
		return stepWait // the rejoin's history tells whether the server kept it
	}
}

// emitted records that id goes out on connection gen.
func (ls *lines) emitted(id int64, gen uint64, text string) {
	ls.pending, ls.gen, ls.text = id, gen, text
}

// confirm records id as delivered.
func (ls *lines) confirm(id int64) {
	if ls.pending == id {
		ls.pending, ls.text = 0, ""
	}
	if slices.Contains(ls.confirmed, id) {
		return
	}
	if len(ls.confirmed) == maxConfirmed {
		ls.confirmed = slices.Delete(ls.confirmed, 0, 1)
	}
	ls.confirmed = append(ls.confirmed, id)
}

// sentID is the message id behind a sendMessage id, false for an id that is
// not ours.
func sentID(s string) (int64, bool) {
	rest, ok := strings.CutPrefix(s, idPrefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil && id != 0
}

// ownLine records one of our own ChatMessages coming back from the server
// on conversation conv, read on connection gen: live (an echo) or in a
// join's history. A live echo whose id the server replaced confirms the
// pending line with the same text if that line went out on the same
// connection; a history line without our id confirms nothing (an earlier
// line may have had the same text).
func (v *Vendor) ownLine(conv string, m *message, live bool, gen uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	l, ok := v.live[conv]
	if !ok || m.Type != typeChat {
		return
	}
	id, ours := sentID(m.ID)
	switch {
	case ours:
		l.lines.confirm(id)
	case live && l.lines.pending != 0 && l.lines.gen == gen && m.Text == l.lines.text:
		l.lines.confirm(l.lines.pending)
	default:
		return
	}
	v.changedLocked()
}

// historyRead records that conv's history on connection gen has been
// handled (and its own lines confirmed). A worker may handle it after a
// newer connection is up: it then says nothing about that connection's
// history, which alone decides whether a line is sent again.
func (v *Vendor) historyRead(conv string, gen uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if l, ok := v.live[conv]; ok {
		l.lines.histGen = max(l.lines.histGen, gen)
		v.changedLocked()
	}
}

// changedLocked wakes every Send waiting for a confirmation, a history or a
// connection change. v.mu is held.
func (v *Vendor) changedLocked() {
	close(v.changed)
	v.changed = make(chan struct{})
}

// sendLine emits line id of conversation conv until the server confirms it,
// for at most send_confirm_timeout. A line already confirmed is not
// emitted again; one emitted on this connection is awaited, not repeated;
// one emitted on a connection that died is emitted again once this
// connection's history shows the server does not have it. Every error is
// retryable (the core calls Send again with the same message) but one
// wrapping connector.ErrChatLost: the server no longer has the chat.
func (v *Vendor) sendLine(ctx context.Context, conv string, id int64, msg message) error {
	timer := time.NewTimer(v.cfg.SendConfirmTimeout)
	defer timer.Stop()
	for {
		v.mu.Lock()
		l, ok := v.live[conv]
		if !ok {
			err := v.lostErrLocked(conv)
			v.mu.Unlock()
			if err != nil {
				return err
			}
			return fmt.Errorf("customerchannel: message %d: conversation %s is no longer carried", id, conv)
		}
		client, gen, changed := v.client, v.gen, v.changed
		next := l.lines.next(id, gen)
		if next == stepEmit && client != nil {
			l.lines.emitted(id, gen, msg.Text)
		}
		v.mu.Unlock()
		switch {
		case next == stepDone:
			return nil
		case client == nil:
			return errNotConnected
		case next == stepEmit:
			if err := v.emitLine(ctx, client, conv, id, gen, msg); err != nil {
				return err
			}
			continue // now awaited
		}
		if err := v.awaitLine(ctx, l, changed, timer); err != nil {
			return fmt.Errorf("customerchannel: message %d %w", id, err)
		}
	}
}

// awaitLine waits, as one of l's waiters, for a change, the timer or ctx.
// While the server's answer to this connection's join of the chat is due
// (lost.go), the timer only starts another period: the answer, or its
// absence, decides the line. A verdict that the server lost the chat, given
// meanwhile, is returned whatever woke it.
func (v *Vendor) awaitLine(ctx context.Context, l *live, changed <-chan struct{}, timer *time.Timer) error {
	v.mu.Lock()
	l.waiters++
	v.mu.Unlock()
	var err error
wait:
	for {
		select {
		case <-changed:
			break wait
		case <-timer.C:
			v.mu.Lock()
			due := v.verdictDueLocked(l)
			v.mu.Unlock()
			if due {
				timer.Reset(v.cfg.SendConfirmTimeout)
				continue
			}
			err = fmt.Errorf("not confirmed by the chat server within %v (no echo); it is sent again only if the server does not have it",
				v.cfg.SendConfirmTimeout)
		case <-ctx.Done():
			err = fmt.Errorf("not confirmed yet: %w", ctx.Err())
		}
		break
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	l.waiters--
	if lost := v.lostErrLocked(l.s.ConversationID); lost != nil {
		return fmt.Errorf("not confirmed: %w", lost)
	}
	return err
}

// emitLine writes the line. A refusal that certainly wrote nothing (a
// context already done, a full send queue) forgets the emission, so that
// the next attempt emits on this connection again; any other failure may
// have reached the server, and the next connection's history decides.
func (v *Vendor) emitLine(ctx context.Context, client sio.Client, conv string, id int64, gen uint64, msg message) error {
	err := ctx.Err()
	unsent := err != nil
	if err == nil {
		err = client.Emit(ctx, evSend, msg)
		unsent = errors.Is(err, sio.ErrBacklog)
	}
	if err == nil {
		return nil
	}
	if unsent {
		v.mu.Lock()
		if l, ok := v.live[conv]; ok && l.lines.pending == id && l.lines.gen == gen {
			l.lines.pending, l.lines.text = 0, ""
		}
		v.mu.Unlock()
	}
	return fmt.Errorf("emit %s: %w", evSend, connector.Redacted(err))
}
