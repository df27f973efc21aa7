package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listen reports the notifications other instances commit for this one
// until ctx is done; see connector.Cluster. It listens on a connection of its
// own (a pgx connection, not one of the pools: a pooled connection would be
// handed to other work between waits), and calls wake and sweep from that
// goroutine, one at a time: they should only signal. sweep comes once as
// soon as it listens, since what was committed before was not notified,
// and again for every hand-back by another instance. It returns nil
// once ctx is done, and an error, without the DSN, when the connection fails
// (the server went away or the backend was terminated); it does not connect
// again itself.
func (s *Store) Listen(ctx context.Context, wake func(conversation int64), sweep func()) error {
	if _, err := s.clusterDB(); err != nil {
		return err
	}
	conn, err := pgx.ConnectConfig(ctx, s.listen)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return redactedError("connect to listen", err, s.dsn)
	}
	defer closeListener(conn)
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return redactedError("listen", err, s.dsn)
	}
	if s.onListen != nil {
		s.onListen()
	}
	sweep()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return redactedError("wait for notifications", err, s.dsn)
		}
		s.dispatch(n.Payload, wake, sweep)
	}
}

// closeListener closes the listening connection, bounded: a server that
// stopped answering must not hold Listen's return.
func closeListener(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn.Close(ctx) //nolint:errcheck // the connection is done with either way
}

// dispatch acts on one payload: a wake for a conversation this instance owns
// that another instance wrote to, a claimable notice from another instance.
// Payloads it does not know (another program on the channel) are ignored.
func (s *Store) dispatch(payload string, wake func(int64), claimable func()) {
	n, ok := parseNotice(payload)
	switch {
	case !ok || n.writer == s.instance:
		// Its own writes and hand-backs: this instance knows of them already.
	case n.kind == noticeWake && n.owner == s.instance:
		wake(n.conversation)
	case n.kind == noticeClaimable:
		claimable()
	}
}

// The notification payloads, written by Release and by the trigger of
// migration 0002 (messages_wake_owner):
//
//	wake <conversation id> <owner> <writer>
//	claimable <writer>
//
// Fields are separated by one space; instance ids have none. writer is ""
// for a session that is no connectord instance (psql).
const (
	noticeWake      = "wake"
	noticeClaimable = "claimable"
)

// notice is a parsed payload.
type notice struct {
	kind          string
	conversation  int64
	owner, writer string
}

func claimableNotice(writer string) string { return noticeClaimable + " " + writer }

// parseNotice reads a payload; ok is false for anything not written as above.
func parseNotice(p string) (n notice, ok bool) {
	f := strings.Split(p, " ")
	switch {
	case len(f) == 4 && f[0] == noticeWake:
		id, err := strconv.ParseInt(f[1], 10, 64)
		// Only the trigger's own spelling of the id: no sign, no leading zero.
		if err != nil || id <= 0 || strconv.FormatInt(id, 10) != f[1] || f[2] == "" || !validWriter(f[2]) || !validWriter(f[3]) {
			return notice{}, false
		}
		return notice{kind: noticeWake, conversation: id, owner: f[2], writer: f[3]}, true
	case len(f) == 2 && f[0] == noticeClaimable && validWriter(f[1]):
		return notice{kind: noticeClaimable, writer: f[1]}, true
	}
	return notice{}, false
}

// validWriter accepts an instance id or "" (a session without one).
func validWriter(id string) bool { return id == "" || validInstance(id) }

func (n notice) String() string {
	if n.kind == noticeWake {
		return fmt.Sprintf("%s %d %s %s", n.kind, n.conversation, n.owner, n.writer)
	}
	return claimableNotice(n.writer)
}
