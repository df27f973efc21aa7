package bench

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// footprintResult is what N live conversations cost, and a restart with
// them stored.
type footprintResult struct {
	N                 int
	BaseRSS           int64         // the fresh daemon's VmRSS, bytes
	RSSPerConv        float64       // VmRSS growth per conversation, bytes
	GoroutinesPerConv float64       // go_goroutines growth per conversation
	HeapPerConv       float64       // go_memstats_heap_inuse_bytes growth per conversation
	StackPerConv      float64       // go_memstats_stack_inuse_bytes growth per conversation
	FDs               int           // the daemon's open files with N conversations
	FakeGoroutines    float64       // this process's goroutines per chat (the fakes)
	Open              time.Duration // to open all N (webhooks to chats at WhosOn, outbox empty)
	Ready             time.Duration // SIGKILL restart: start -> admin /readyz 200
	Resumed           time.Duration // start -> every chat resumed at the fake WhosOn
	ResumedChats      int           // how many chats were resumed (N unless the wait ran out)
}

// footprintProfiles are where measureFootprint writes the daemon's profiles;
// none is taken when empty.
type footprintProfiles struct {
	restart string // CPU, during the restart
	heap    string // heap, with the n conversations open
}

// measureFootprint opens n conversations on a fresh daemon, measures what
// they cost, then SIGKILLs and restarts it and times the way back.
//
// With profiles set, the loaded daemon's heap profile is written, and the
// restart's CPU profile, for as many seconds as a restart of n chats took on
// a 2-core machine.
func measureFootprint(ctx context.Context, parent, binary string, n int, profiles footprintProfiles, progress func(string)) (footprintResult, error) {
	res := footprintResult{N: n}
	w, err := newWorld(parent, binary, profiles.restart != "" || profiles.heap != "")
	if err != nil {
		return res, err
	}
	defer w.close()
	if _, err := w.start(ctx); err != nil {
		return res, err
	}
	base, err := w.footprint(ctx)
	if err != nil {
		return res, err
	}
	res.BaseRSS = base.rss
	fakeBase := runtime.NumGoroutine()

	progress(fmt.Sprintf("opening %d conversations", n))
	began := time.Now()
	if err := openConversations(ctx, w, n); err != nil {
		return res, err
	}
	res.Open = time.Since(began)
	loaded, err := w.footprint(ctx)
	if err != nil {
		return res, err
	}
	res.RSSPerConv = float64(loaded.rss-base.rss) / float64(n)
	res.GoroutinesPerConv = (loaded.goroutines - base.goroutines) / float64(n)
	res.HeapPerConv = (loaded.heap - base.heap) / float64(n)
	res.StackPerConv = (loaded.stack - base.stack) / float64(n)
	res.FDs = loaded.fds
	res.FakeGoroutines = float64(runtime.NumGoroutine()-fakeBase) / float64(n)
	if profiles.heap != "" {
		// After the figures: fetching a profile makes garbage of its own.
		if err := w.fetch(ctx, profiles.heap, "/debug/pprof/heap?gc=1", 30*time.Second); err != nil {
			return res, fmt.Errorf("heap profile: %w", err)
		}
	}

	progress(fmt.Sprintf("SIGKILL and restart with %d conversations", n))
	w.proc.kill()
	w.resumed.reset()
	began = time.Now()
	d, err := startDaemon(w.binary, w.cfg, w.admin, []string{tokenEnv + "=" + w.twilio.AuthToken()})
	if err != nil {
		return res, err
	}
	w.proc = d
	var prof *profile
	if profiles.restart != "" {
		prof = w.profileStart(ctx, profiles.restart, 1+n/2000)
	}
	if res.Ready, err = d.waitReady(ctx, w.client, began, 10*time.Minute); err != nil {
		return res, err
	}
	if prof != nil {
		if err := prof.wait(); err != nil {
			return res, err
		}
	}
	res.ResumedChats = waitResumed(ctx, w, n, 10*time.Minute)
	res.Resumed = time.Since(began)
	return res, nil
}

// openConversations sends one SMS from each of n new customers and waits
// until the fake WhosOn has their n chats and the daemon's outbox is empty.
func openConversations(ctx context.Context, w *world, n int) error {
	forms := make([]signedForm, n)
	for i := range forms {
		forms[i] = inboundForm(w.twilio, w.hook, messageSID(3, 0, i), customer(2, i), "hello")
	}
	client := webhookClient()
	defer client.CloseIdleConnections()
	if err := postAll(ctx, client, w.hook, forms, 32); err != nil {
		return fmt.Errorf("opening conversations: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if _, err := w.whoson.WaitChats(wctx, n); err != nil {
		return fmt.Errorf("opening conversations: %w", err)
	}
	return w.waitOutboxEmpty(ctx, 5*time.Minute)
}

// waitResumed waits until n chats were resumed at the fake, or within
// passed, and returns how many were.
func waitResumed(ctx context.Context, w *world, n int, within time.Duration) int {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil && !w.proc.exited() {
		if got := w.resumed.count(); got >= n {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	return w.resumed.count()
}

// usage is the daemon's footprint at one moment.
type usage struct {
	rss         int64
	goroutines  float64
	heap, stack float64 // the Go runtime's in-use heap spans and stacks, bytes
	fds         int
}

func (w *world) footprint(ctx context.Context) (usage, error) {
	var u usage
	m, err := w.proc.metrics(ctx, w.client)
	if err != nil {
		return u, err
	}
	u.goroutines = m.get("go_goroutines")
	u.heap = m.get("go_memstats_heap_inuse_bytes")
	u.stack = m.get("go_memstats_stack_inuse_bytes")
	if u.rss, err = rssBytes(w.proc.pid); err != nil {
		return u, err
	}
	u.fds, err = openFDs(w.proc.pid)
	return u, err
}

// fdCap is how many conversations the footprint may open: WhosOn's Chat API
// needs one WebSocket per chat, an open file in the daemon and another in
// this process (the fake), so both stay under the hard limit of open files
// with margin left for listeners, store files and HTTP connections.
func fdCap(hard uint64) (int, string) {
	const margin = 1000
	limit := int(min(hard, 1<<30))
	capN := limit - margin
	if limit < 4*margin {
		capN = limit / 2
	}
	return capN, fmt.Sprintf("conversations capped at %d: each WhosOn chat is one WebSocket, an open file in the daemon and one in the fake; the hard limit of open files is %d, less %d for listeners, store files and HTTP connections",
		capN, limit, limit-capN)
}
