package xima

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// pollPool long-polls the chats' queues. Xima gives every chat its own
// serverToClientQueue and the messages name no chat, so a queue cannot be
// shared: each live chat needs a receive of its own. At most max receives
// are in flight; a worker takes the next chat from a ring, polls it once,
// and puts it back, so with no more chats than max each chat always has a
// long poll waiting, and past max they take turns with a shorter wait.
type pollPool struct {
	v   *Vendor
	max int

	mu      sync.Mutex
	ring    []*chat
	queued  map[*chat]bool
	workers int
	fails   map[*chat]pollFailure
}

// pollFailure is a chat's record of failed polls: down while its last poll
// failed; n counts toward the back-off until a poll has worked for
// reconnect_stable after the last failure.
type pollFailure struct {
	n    int
	err  string
	last time.Time
	down bool
}

func newPollPool(v *Vendor, max int) *pollPool {
	return &pollPool{v: v, max: max, queued: map[*chat]bool{}, fails: map[*chat]pollFailure{}}
}

// add puts c in the ring, starting a worker when fewer than max run.
func (p *pollPool) add(c *chat) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.closed() || p.queued[c] {
		return
	}
	p.queued[c] = true
	p.ring = append(p.ring, c)
	if p.workers < p.max {
		p.workers++
		if !p.v.group.Go(p.work) {
			p.workers--
		}
	}
}

// next takes the next chat to poll; nil ends the worker (nothing waits).
func (p *pollPool) next() *chat {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.ring) > 0 {
		c := p.ring[0]
		p.ring = p.ring[1:]
		delete(p.queued, c)
		if !c.closed() {
			return c
		}
		delete(p.fails, c)
	}
	p.workers--
	return nil
}

func (p *pollPool) work(ctx context.Context) {
	for {
		c := p.next()
		if c == nil {
			return
		}
		p.v.pollOnce(ctx, c, p.wait())
		if c.closed() {
			p.forget(c)
			continue
		}
		p.mu.Lock()
		if !p.queued[c] {
			p.queued[c] = true
			p.ring = append(p.ring, c)
		}
		p.mu.Unlock()
	}
}

// wait is the long-poll wait: poll_wait while every chat has a receive of
// its own, shorter when they take turns, so that a round of all of them
// stays near poll_wait (at least 1 s: a shorter wait is SQS's short poll,
// which can miss messages).
func (p *pollPool) wait() time.Duration {
	w := p.v.cfg.PollWait
	if live := p.v.liveCount(); live > p.max {
		w = max(time.Second, (w * time.Duration(p.max) / time.Duration(live)).Truncate(time.Second))
	}
	return w
}

// failed records a failed poll of c and returns the failures counted.
func (p *pollPool) failed(c *chat, err error) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	f := p.fails[c]
	if !f.down && now.Sub(f.last) >= p.v.cfg.ReconnectStable {
		f.n = 0 // it worked for a while: a new trouble
	}
	f.n++
	f.err, f.last, f.down = connector.RedactError(err), now, true
	p.fails[c] = f
	return f.n
}

// succeeded records a poll of c that worked.
func (p *pollPool) succeeded(c *chat) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.fails[c]
	switch {
	case !ok:
	case time.Since(f.last) >= p.v.cfg.ReconnectStable:
		delete(p.fails, c)
	default:
		f.down = false
		p.fails[c] = f
	}
}

func (p *pollPool) forget(c *chat) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.fails, c)
}

// failing counts the live chats whose last poll failed, with the lowest
// conversation id among them and why it failed.
func (p *pollPool) failing() (n int, first int64, why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, f := range p.fails {
		if c.closed() || !f.down {
			continue
		}
		n++
		if first == 0 || c.id < first {
			first, why = c.id, f.err
		}
	}
	return n, first, why
}

// backoff is the wait before poll attempt n+1 after n failures:
// reconnect_initial doubling to reconnect_max, with jitter over its upper
// half (connector.Reconnect's policy).
func (v *Vendor) backoff(n int) time.Duration {
	d := v.cfg.ReconnectInitial << min(max(n-1, 0), 30)
	if d <= 0 || d > v.cfg.ReconnectMax {
		d = v.cfg.ReconnectMax
	}
	return d/2 + rand.N(d/2+1)
}

// pollOnce receives one batch of c's queue and handles it; ctx is the
// vendor's lifetime (a delete or a lost report outlives the chat).
func (v *Vendor) pollOnce(ctx context.Context, c *chat, wait time.Duration) {
	_, queue := c.ids()
	key, _ := v.creds.current(c.ctx)
	rctx, cancel := context.WithTimeout(c.ctx, wait+v.cfg.RequestTimeout)
	out, err := v.sqs.ReceiveMessage(rctx, &sqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(queue),
		MaxNumberOfMessages:         int32(v.cfg.PollMaxMessages),
		WaitTimeSeconds:             int32(wait / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameSentTimestamp},
	}, v.endpointFor(queue))
	cancel()
	if c.closed() {
		return
	}
	if err != nil {
		v.pollFailed(ctx, c, key, err)
		return
	}
	v.pool.succeeded(c)
	v.handleBatch(ctx, c, out.Messages)
}

// pollFailed handles a failed receive: credentials refused are fetched
// again and the poll retried at once (the first time); a queue that no
// longer exists means the chat may be gone; anything else backs off.
func (v *Vendor) pollFailed(ctx context.Context, c *chat, key string, err error) {
	n := v.pool.failed(c, err)
	switch {
	case isAuthError(err):
		c.log.Info("xima SQS refused the credentials; fetching them again", zap.String("error", connector.RedactError(err)))
		v.creds.refused(c.ctx, key)
		if n == 1 {
			return
		}
	case isQueueGone(err):
		if v.checkLost(ctx, c, "its SQS queue no longer exists") {
			return
		}
	default:
		c.log.Warn("xima SQS receive failed", zap.Int("attempt", n), zap.String("error", connector.RedactError(err)))
	}
	t := time.NewTimer(v.backoff(n))
	defer t.Stop()
	select {
	case <-c.ctx.Done():
	case <-t.C:
	}
}

// endpointFor sets the SQS endpoint and region of a call on queue: the
// configured sqs_endpoint, else the queue URL's scheme and host; the region
// Xima's credentials name, else the one in the queue's host name.
func (v *Vendor) endpointFor(queue string) func(*sqs.Options) {
	region, _, _ := v.creds.state()
	base := ""
	if v.cfg.sqsBase != nil {
		base = v.cfg.sqsBase.String()
	}
	if u, err := url.Parse(queue); err == nil && u.Host != "" {
		if base == "" && (u.Scheme == "https" || u.Scheme == "http" && connector.IsLoopback(u.Hostname())) {
			base = u.Scheme + "://" + u.Host
		}
		if region == "" {
			region = regionOf(u.Hostname())
		}
	}
	if region == "" {
		region = "us-east-1"
	}
	return func(o *sqs.Options) {
		if base != "" {
			o.BaseEndpoint = aws.String(base)
		}
		o.Region = region
	}
}

// regionOf reads the region from an SQS host name: sqs.us-east-1.amazonaws.com
// or us-east-1.queue.amazonaws.com.
func regionOf(host string) string {
	parts := strings.Split(host, ".")
	switch {
	case len(parts) >= 3 && parts[0] == "sqs":
		return parts[1]
	case len(parts) >= 3 && parts[1] == "queue":
		return parts[0]
	}
	return ""
}

// received is one SQS message of a batch, decoded.
type received struct {
	id      string // the de-duplication id: the SNS MessageId, else the SQS one
	handle  string
	sent    int64 // SentTimestamp, ms
	msg     message
	bad     error // malformed: deleted, never processed
	sqsID   string
	arrival int
}

// handleBatch handles one batch in SentTimestamp order: each message's
// effects are committed before the message is deleted; a message already
// handled (the same id seen) is only deleted. It stops at the first message
// whose commit did not happen (Stop, the chat's end): that one and the rest
// stay in the queue, to be delivered again.
func (v *Vendor) handleBatch(ctx context.Context, c *chat, msgs []types.Message) {
	batch := make([]received, 0, len(msgs))
	for i, m := range msgs {
		r := received{handle: aws.ToString(m.ReceiptHandle), sqsID: aws.ToString(m.MessageId), arrival: i}
		r.sent, _ = strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64)
		r.msg, r.bad = decodeMessage([]byte(aws.ToString(m.Body)))
		r.id = r.msg.ID
		if r.id == "" {
			r.id = r.sqsID
		}
		batch = append(batch, r)
	}
	slices.SortStableFunc(batch, func(a, b received) int {
		if a.sent != b.sent {
			return compare(a.sent, b.sent)
		}
		return compare(a.arrival, b.arrival)
	})
	for _, r := range batch {
		if c.closed() {
			return
		}
		switch {
		case r.id == "" || len(r.id) > maxID:
			c.log.Warn("xima queue message without a usable id deleted")
		case c.hasSeen(r.id):
			c.log.Debug("xima queue message seen before deleted", zap.String("message", r.id))
		case r.bad != nil:
			c.log.Warn("xima queue message malformed; deleted", zap.String("message", r.id), zap.Error(r.bad))
			c.markSeen(r.id)
		default:
			if !v.handle(c, r.msg, r.id) {
				return
			}
		}
		v.deleteMessage(ctx, c, r)
	}
}

func compare[T int | int64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// deleteMessage deletes one received message. Failing is harmless: a
// receipt handle that expired (the sink was slow) or a delete that did not
// arrive leaves the message to be delivered again, and its id, stored with
// its effects, makes the redelivery a no-op.
func (v *Vendor) deleteMessage(ctx context.Context, c *chat, r received) {
	_, queue := c.ids()
	for attempt := 0; ; attempt++ {
		key, _ := v.creds.current(ctx)
		dctx, cancel := context.WithTimeout(ctx, v.cfg.RequestTimeout)
		_, err := v.sqs.DeleteMessage(dctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queue),
			ReceiptHandle: aws.String(r.handle)}, v.endpointFor(queue))
		cancel()
		switch {
		case err == nil, ctx.Err() != nil:
			return
		case isAuthError(err) && attempt == 0:
			v.creds.refused(ctx, key) // rotated: once more with the new ones
			continue
		}
		c.log.Info("xima SQS delete failed; the message will come again and be recognised",
			zap.String("message", r.id), zap.String("error", connector.RedactError(err)))
		return
	}
}

// checkLost asks Xima whether c's chat still exists (the queue is gone, a
// still-here was refused). Gone: EventLost is committed (the core opens a
// new chat) and c stops; true. A chat that exists under another queue
// takes that queue. ctx is the vendor's lifetime: the commits outlive c.
func (v *Vendor) checkLost(ctx context.Context, c *chat, why string) bool {
	chatID, queue := c.ids()
	cs, gone, err := v.api.checkChat(c.ctx, chatID, c.jar)
	switch {
	case err != nil:
		c.log.Info("xima chat not checked", zap.String("why", why), zap.String("error", connector.RedactError(err)))
		return false
	case !gone:
		if cs.Queue != "" && cs.Queue != queue {
			c.log.Info("xima chat has a new queue", zap.String("queue", redactQueue(cs.Queue)))
			c.setQueue(cs.Queue)
			v.saveSession(ctx, c)
		}
		return false
	}
	c.log.Info("xima chat gone", zap.String("why", why))
	v.reportLost(ctx, c, fmt.Sprintf("xima chat %s gone (%s)", chatID, why))
	return true
}

// reportLost stops c and commits EventLost, when c is still its
// conversation's chat: whoever stops a lost chat first (this, or a Send
// that found it gone and returns ErrChatLost) is the only one to report it.
// The event carries no session: the stored one may differ from c's newest
// by cookies or seen ids, and the core ignores a lost report whose session
// is not the stored one. From then on a Resume from a session naming the
// chat waits (a retry) instead of reporting it again with ErrChatLost: the
// core's next attempt reads the conversation again, whose session the
// stored report replaced. A report that does not get stored (Stop) is made
// again by the next Resume, which finds the chat gone.
func (v *Vendor) reportLost(ctx context.Context, c *chat, reason string) {
	chatID, _ := c.ids()
	v.mu.Lock()
	v.reported[c.id] = chatID
	v.mu.Unlock()
	if !v.drop(c) {
		v.forgetReported(c.id, chatID)
		return
	}
	err := v.deliver(ctx, connector.Event{ConversationID: c.id, Type: connector.EventLost, Reason: reason})
	if err != nil {
		v.forgetReported(c.id, chatID)
		c.log.Info("xima lost chat not reported", zap.String("error", connector.RedactError(err)))
	}
}

// reportedLost reports whether chat chatID of conversation id is being
// reported lost, or was.
func (v *Vendor) reportedLost(id int64, chatID string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.reported[id] == chatID
}

// forgetReported drops the conversation's reported chat if it is chatID.
func (v *Vendor) forgetReported(id int64, chatID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.reported[id] == chatID {
		delete(v.reported, id)
	}
}

// saveSession stores the chat's session on its own (an EventSession).
func (v *Vendor) saveSession(ctx context.Context, c *chat) {
	if err := v.commit(ctx, c, connector.Event{Type: connector.EventSession}, ""); err != nil {
		c.log.Info("xima session not stored", zap.String("error", connector.RedactError(err)))
	}
}
