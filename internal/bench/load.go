package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// stepResult is one open-loop step at an offered rate.
type stepResult struct {
	Rate     float64 // offered, messages/s
	Achieved float64 // acknowledged 200 per second of the step
	Sent     int     // webhooks posted
	Acked    int     // answered 200
	Errors   int     // answered otherwise (503 included) or not at all

	AckP50, AckP99, AckMax time.Duration // from the scheduled time to the answer
	InP50, InP99           time.Duration // scheduled -> the fake WhosOn has the line
	OutP50, OutP99         time.Duration // operator reply -> the fake Twilio has the SMS
	Missing                int           // acknowledged lines not at the agent, or answers not at the customer, by the end of the drain

	Ratio              float64 // AckP50 / (fsync p50 + loopback p50)
	WritesPerCommit    float64 // store writes per transaction
	SyncedWritesPerMsg float64 // synced store writes per relayed message; NaN without the counter
	CPUPerMsg          float64 // daemon CPU ms per relayed message
	DaemonCores        float64 // daemon CPU seconds per second of the step and its drain
	BenchCores         float64 // the same for this process (load generator and fakes)
	OtherCores         float64 // the same for every other process on the machine
}

// webhookClient is the load generator's one client: enough kept-alive
// connections that an open-loop burst seldom dials, under the daemon's
// default max_connections (1024).
func webhookClient() *http.Client {
	tr := &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, MaxConnsPerHost: 768,
		IdleConnTimeout: time.Minute}
	return &http.Client{Transport: tr, Timeout: 15 * time.Second} // Twilio's webhook timeout
}

// warmUp opens one conversation per load customer and waits until each has
// its chat and its answers went out, so that the steps measure relaying.
func warmUp(ctx context.Context, w *world, client *http.Client, customers int) error {
	forms := make([]signedForm, customers)
	for i := range forms {
		forms[i] = inboundForm(w.twilio, w.hook, messageSID(1, 0, i), customer(1, i), "hello")
	}
	if err := postAll(ctx, client, w.hook, forms, 32); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := w.whoson.WaitChats(wctx, customers); err != nil {
		return fmt.Errorf("warm-up: %w", err)
	}
	return w.waitOutboxEmpty(ctx, 2*time.Minute)
}

// postAll posts forms with at most workers at once (closed loop: for
// setting up state, not for measuring), failing on the first non-200.
func postAll(ctx context.Context, client *http.Client, hook string, forms []signedForm, workers int) error {
	var next atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(forms) || ctx.Err() != nil {
					return
				}
				status, err := retryPost(ctx, client, hook, forms[i])
				if err != nil || status != http.StatusOK {
					once.Do(func() { first = fmt.Errorf("webhook %d: status %d, %v", i, status, err) })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// retryPost posts f, again after a 503 (the daemon's max_inflight), as
// Twilio would.
func retryPost(ctx context.Context, client *http.Client, hook string, f signedForm) (int, error) {
	for attempt := 0; ; attempt++ {
		status, err := post(ctx, client, hook, f)
		if status != http.StatusServiceUnavailable || attempt == 20 {
			return status, err
		}
		select {
		case <-ctx.Done():
			return status, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// runStep offers rate messages/s for d from the load customers, then waits
// for the lines and answers to arrive and the outbox to empty, and returns
// the figures. fl is this run's floors; step numbers the MessageSids.
func runStep(ctx context.Context, w *world, client *http.Client, fl floors, step int, rate float64, d time.Duration, customers int) (stepResult, error) {
	res := stepResult{Rate: rate}
	offs := schedule(rate, d)
	forms := make([]signedForm, len(offs))
	for i := range forms {
		forms[i] = inboundForm(w.twilio, w.hook, messageSID(2, step, i), customer(1, i%customers), fmt.Sprint("b", i))
	}
	st := w.track.begin(len(offs))
	acks := make([]time.Duration, len(offs))
	oks := make([]bool, len(offs))
	var wg sync.WaitGroup
	wg.Add(len(offs))

	before, err := w.sample(ctx)
	if err != nil {
		return res, err
	}
	start := time.Now().Add(20 * time.Millisecond)
	dues := dispatch(ctx, start, offs, func(i int, due time.Time) {
		defer wg.Done()
		status, err := post(ctx, client, w.hook, forms[i])
		acks[i] = time.Since(due)
		oks[i] = err == nil && status == http.StatusOK
	})
	for range len(offs) - len(dues) {
		wg.Done() // never dispatched: ctx ended
	}
	wg.Wait()
	ackEnd := time.Now()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.Sent = len(dues)
	var ok []time.Duration
	for i := range dues {
		if oks[i] {
			ok = append(ok, acks[i])
		}
	}
	res.Acked, res.Errors = len(ok), res.Sent-len(ok)
	res.Achieved = float64(res.Acked) / max(d.Seconds(), ackEnd.Sub(start).Seconds())
	res.AckMax = percentile(ok, 100)
	res.AckP50, res.AckP99 = percentile(ok, 50), percentile(ok, 99)

	waitRelayed(ctx, st, int64(res.Acked), 30*time.Second)
	// An overloaded step may leave a backlog past the wait: Missing shows
	// it, and the next step starts anyway. Only a dead daemon stops the run.
	if err := w.waitOutboxEmpty(ctx, 2*time.Minute); err != nil && (ctx.Err() != nil || w.proc.exited()) {
		return res, err
	}

	after, err := w.sample(ctx)
	if err != nil {
		return res, err
	}
	res.endToEnd(w.track, st, dues, oks)
	res.deltas(before, after, float64(st.agents.Load()+st.customers.Load()))
	if floor := fl.FsyncP50 + fl.LoopP50; floor > 0 {
		res.Ratio = float64(res.AckP50) / float64(floor)
	}
	return res, nil
}

// waitRelayed waits until n lines reached the agent and n answers the
// customer, or within passed.
func waitRelayed(ctx context.Context, st *stepTimes, n int64, within time.Duration) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if st.agents.Load() >= n && st.customers.Load() >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// endToEnd fills the end-to-end percentiles from the step's timestamps.
func (r *stepResult) endToEnd(t *tracker, st *stepTimes, dues []time.Time, oks []bool) {
	var in, out []time.Duration
	for i, due := range dues {
		if !oks[i] {
			continue
		}
		agent, replied, cust := st.atAgent[i].Load(), st.replied[i].Load(), st.atCustomer[i].Load()
		if agent == 0 || cust == 0 || replied == 0 {
			r.Missing++
			continue
		}
		in = append(in, t.at(agent).Sub(due))
		out = append(out, time.Duration(cust-replied))
	}
	r.InP50, r.InP99 = percentile(in, 50), percentile(in, 99)
	r.OutP50, r.OutP99 = percentile(out, 50), percentile(out, 99)
}

// deltas fills the store and CPU figures from samples before and after,
// relayed being the lines that reached the agent plus the answers that
// reached the customer.
func (r *stepResult) deltas(before, after sample, relayed float64) {
	d := func(name string) float64 { return after.m.get(name) - before.m.get(name) }
	r.WritesPerCommit = d("connectord_store_writes_total") / d("connectord_store_transactions_total")
	r.SyncedWritesPerMsg = math.NaN()
	if relayed > 0 {
		r.SyncedWritesPerMsg = d("connectord_store_synced_writes_total") / relayed
		r.CPUPerMsg = ms(after.daemonCPU-before.daemonCPU) / relayed
	}
	wall := after.at.Sub(before.at).Seconds()
	r.DaemonCores = (after.daemonCPU - before.daemonCPU).Seconds() / wall
	r.BenchCores = (after.selfCPU - before.selfCPU).Seconds() / wall
	busy := (after.machine - before.machine).Seconds() / wall
	r.OtherCores = max(0, busy-r.DaemonCores-r.BenchCores)
}

// sample is the daemon's counters and both processes' CPU at one moment.
type sample struct {
	at                          time.Time
	m                           metrics
	daemonCPU, selfCPU, machine time.Duration
}

func (w *world) sample(ctx context.Context) (sample, error) {
	s := sample{at: time.Now()}
	var err error
	if s.m, err = w.proc.metrics(ctx, w.client); err != nil {
		return s, err
	}
	if s.daemonCPU, err = cpuTime(w.proc.pid); err != nil {
		return s, err
	}
	if s.selfCPU, err = cpuTime("self"); err != nil {
		return s, err
	}
	s.machine, err = machineBusy()
	return s, err
}

// drain reads and closes a response body so its connection is reused.
func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}
