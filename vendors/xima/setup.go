package xima

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

var (
	_ connector.Vendor  = (*Vendor)(nil)
	_ connector.Resumer = (*Vendor)(nil)
	_ connector.Checker = (*Vendor)(nil)
)

// Kind is the "xima" vendor kind for the daemon's registry.
func Kind() connector.VendorKind { return connector.NewVendorKind("xima", Build, Defaults) }

// Vendor is one [vendors.xima.NAME] instance.
type Vendor struct {
	name     string
	cfg      *settings
	log      *zap.Logger
	sink     connector.EventSink
	progress connector.SendProgress
	api      *api
	creds    *creds
	sqs      *sqs.Client
	restHTTP *http.Client
	sqsHTTP  *http.Client
	keep     *keepalive
	pool     *pollPool

	// group runs the loops and polls, and ends with Stop; chats live under
	// it, since they start in Open and Resume, whose own contexts end when
	// they return.
	group *connector.Group

	mu    sync.Mutex
	chats map[int64]*chat
	// reported names, by conversation, the chat whose EventLost is being
	// committed or was (reportLost), until the conversation has a chat
	// again or ends.
	reported map[int64]string
	started  bool
	// stopped is set under mu with Stop, so that register, which checks it
	// under mu, adds no chat to chats once Stop began.
	stopped bool
	probed  bool
	restErr error
}

// maxMemProgress bounds the in-memory stand-in for the core's send-progress
// store, used by a vendor built without the core.
const maxMemProgress = 1024

// Build validates env.Instance's block and makes the vendor without
// connecting anything. Every configuration problem is returned, joined.
func Build(env connector.VendorEnv) (*Vendor, error) {
	cfg, err := parseConfig(env.Instance)
	if err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = zap.NewNop()
	}
	progress := env.Progress
	if progress == nil {
		progress = connector.NewMemoryProgress(maxMemProgress)
	}
	v := &Vendor{name: env.Instance.FullName(), cfg: cfg, log: log, sink: env.Sink, progress: progress,
		group: connector.NewGroup(), chats: map[int64]*chat{}, reported: map[int64]string{}}
	// REST calls: one per busy conversation at once, and at most maxSenders
	// still-here calls, share http_connections per host.
	v.restHTTP = &http.Client{Transport: connector.NewTransport(connector.TransportOptions{
		Connections: cfg.HTTPConnections, TLSHandshakeTimeout: cfg.RequestTimeout}),
		// A redirect is not followed: a 307 would carry the API key in the
		// body to wherever it points. It is an error like any non-2xx.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// Every long poll holds a connection for up to poll_wait: the SQS pool
	// has one per possible poll, or each poll would dial anew, plus
	// http_connections for the deletes and receives in between.
	v.sqsHTTP = &http.Client{Transport: boundedTransport{rt: connector.NewTransport(connector.TransportOptions{
		Connections: cfg.MaxPollers + cfg.HTTPConnections, TLSHandshakeTimeout: cfg.RequestTimeout}), max: maxSQSAnswer}}
	v.api = &api{base: cfg.base, installationID: cfg.InstallationID, client: v.restHTTP,
		timeout: cfg.RequestTimeout, now: time.Now}
	v.creds = newCreds(v.api, cfg.CredentialsRefresh, time.Now)
	v.sqs = sqs.New(sqs.Options{
		Region:      "us-east-1", // each call sets the chat queue's region
		Credentials: v.creds.cache,
		HTTPClient:  v.sqsHTTP,
		// The pollers retry with their own back-off; the SDK's retry quota
		// would make a thousand failing pollers fail for its own reasons.
		Retryer: aws.NopRetryer{},
	})
	v.keep = newKeepalive(cfg.StillHereInterval, cfg.StillHereJitter, v.stillHere, v.group.Go)
	v.pool = newPollPool(v, cfg.MaxPollers)
	return v, nil
}

// Name is the instance name, "xima.support".
func (v *Vendor) Name() string { return v.name }

// Start starts the still-here loop and the health probe, and returns;
// queues are polled as chats open or resume.
func (v *Vendor) Start(ctx context.Context) error {
	v.mu.Lock()
	v.started = true
	v.mu.Unlock()
	if !v.group.Go(v.keep.run) || !v.group.Go(v.probeLoop) {
		return errStopped
	}
	return nil
}

var errStopped = errors.New("xima vendor stopped")

// Stop drops every poll and still-here at once (no /chat/end: the chats are
// resumed on the next start, within Xima's 30 s) and waits for every
// goroutine, within ctx. It tolerates a vendor never started.
func (v *Vendor) Stop(ctx context.Context) error {
	v.mu.Lock()
	v.stopped = true
	v.mu.Unlock()
	defer v.restHTTP.CloseIdleConnections()
	defer v.sqsHTTP.CloseIdleConnections()
	if err := v.group.Stop(ctx); err != nil {
		return fmt.Errorf("xima %w", err) // "xima goroutines still running: ..."
	}
	return nil
}

// Health is ready when the REST API answers the health probe, SQS
// credentials were fetched, and no chat's queue poll is failing. It does
// not block.
func (v *Vendor) Health() connector.Health {
	v.mu.Lock()
	started, stopped, probed, restErr, live := v.started, v.stopped, v.probed, v.restErr, len(v.chats)
	v.mu.Unlock()
	_, credErr, fetched := v.creds.state()
	failing, first, why := v.pool.failing()
	switch {
	case stopped:
		return connector.Health{Detail: "stopped"}
	case !started:
		return connector.Health{Detail: "not started"}
	case !probed:
		return connector.Health{Detail: "checking xima"}
	case restErr != nil:
		return connector.Health{Detail: "REST API unreachable: " + connector.RedactError(restErr)}
	case fetched && credErr != nil:
		return connector.Health{Detail: "SQS credentials not fetched: " + connector.RedactError(credErr)}
	case failing > 0:
		return connector.Health{Detail: fmt.Sprintf("%d of %d chat queues failing, retrying (conversation %d: %s)",
			failing, live, first, why)}
	case live > 0:
		return connector.Health{Ready: true, Detail: fmt.Sprintf("%d chats polled", live)}
	default:
		return connector.Health{Ready: true, Detail: "reachable, no chats open"}
	}
}

// probeLoop asks GET /chat/queue/auth now and every health_interval: it
// proves the API and the installation id, and shows rotated credentials
// before SQS refuses the old ones.
func (v *Vendor) probeLoop(ctx context.Context) {
	tick := time.NewTicker(v.cfg.HealthInterval)
	defer tick.Stop()
	for {
		got, err := v.api.credentials(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil && v.creds.rotated(ctx, got.AccessKey) {
			v.log.Info("xima SQS credentials changed; using the new ones")
		}
		v.mu.Lock()
		if v.restErr == nil && err != nil {
			v.log.Warn("xima REST API unreachable", zap.String("error", connector.RedactError(err)))
		} else if v.restErr != nil && err == nil {
			v.log.Info("xima REST API reachable again")
		}
		v.probed, v.restErr = true, err
		v.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// chat returns the live chat of a conversation, or nil.
func (v *Vendor) chat(id int64) *chat {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.chats[id]
}

// register makes ch the conversation's live chat (closing an older one),
// keeps it alive from firstStillHere on, and polls its queue.
func (v *Vendor) register(ch *chat, firstStillHere time.Time) bool {
	v.mu.Lock()
	if v.stopped {
		v.mu.Unlock()
		return false
	}
	old := v.chats[ch.id]
	v.chats[ch.id] = ch
	delete(v.reported, ch.id)
	v.mu.Unlock()
	if old != nil {
		v.retire(old)
	}
	v.keep.add(ch, firstStillHere)
	v.pool.add(ch)
	return true
}

// take removes and returns the conversation's live chat, which stops.
func (v *Vendor) take(id int64) *chat {
	v.mu.Lock()
	ch := v.chats[id]
	delete(v.chats, id)
	v.mu.Unlock()
	if ch != nil {
		v.retire(ch)
	}
	return ch
}

// drop stops ch and removes it if it is still its conversation's live
// chat; it reports whether it was.
func (v *Vendor) drop(ch *chat) bool {
	v.mu.Lock()
	was := v.chats[ch.id] == ch
	if was {
		delete(v.chats, ch.id)
	}
	v.mu.Unlock()
	v.retire(ch)
	return was
}

// retire stops a chat's still-heres and its queue poll.
func (v *Vendor) retire(ch *chat) {
	v.keep.remove(ch)
	ch.close()
}

// liveCount is the number of live chats.
func (v *Vendor) liveCount() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.chats)
}

// deliver commits e through the sink, which retries a store that refuses
// for a moment; it fails only once ctx is done or when e can never be
// stored (Permanent).
func (v *Vendor) deliver(ctx context.Context, e connector.Event) error {
	if v.sink == nil {
		return connector.Permanent(errors.New("xima vendor has no event sink"))
	}
	if err := v.sink.Event(ctx, e); err != nil {
		return fmt.Errorf("commit %s event: %w", e.Type, err)
	}
	return nil
}

// maxSQSAnswer bounds one SQS answer: a batch of ten messages of SQS's
// largest, their attributes and the JSON around them.
const maxSQSAnswer = 10*maxBody + 1<<20

// boundedTransport cuts every answer's body at max bytes: the SDK reads an
// answer whole, and a thousand pollers must not each hold an unbounded one.
type boundedTransport struct {
	rt  http.RoundTripper
	max int64
}

var errAnswerTooLarge = errors.New("xima SQS answer over the size bound")

func (b boundedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := b.rt.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{rc: resp.Body, left: b.max}
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// transport.
func (b boundedTransport) CloseIdleConnections() {
	if c, ok := b.rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

type boundedBody struct {
	rc   io.ReadCloser
	left int64
}

func (l *boundedBody) Read(p []byte) (int, error) {
	if l.left <= 0 {
		var one [1]byte
		n, err := l.rc.Read(one[:])
		if n > 0 || err == nil {
			return 0, errAnswerTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.rc.Read(p)
	l.left -= int64(n)
	return n, err
}

func (l *boundedBody) Close() error { return l.rc.Close() }
