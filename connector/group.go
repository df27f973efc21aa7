package connector

import (
	"context"
	"fmt"
	"sync"
)

// Group owns what an adapter runs between its construction and its Stop:
// background goroutines (Go) and calls bound to its lifetime (Bind). Stop
// ends them all and waits for the goroutines. It is the one place that
// holds an adapter's lifetime context, so that adapters keep none of their
// own. The zero value is not usable: make one with NewGroup.
type Group struct {
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	wg      sync.WaitGroup
	stopped bool
}

// NewGroup returns a running Group.
func NewGroup() *Group {
	ctx, cancel := context.WithCancel(context.Background())
	return &Group{ctx: ctx, cancel: cancel}
}

// Go runs f on a goroutine that Stop waits for, with a context that Stop
// cancels. It reports false, and f does not run, once the group stopped.
func (g *Group) Go(f func(ctx context.Context)) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return false
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f(g.ctx)
	}()
	return true
}

// Bind returns ctx, also ended when the group stops: a call made for the
// core (Open, Send) ends with the adapter.
func (g *Group) Bind(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(g.ctx, cancel)
	return ctx, func() {
		stop()
		cancel()
	}
}

// Done is closed once Stop was called.
func (g *Group) Done() <-chan struct{} { return g.ctx.Done() }

// Stopped reports whether Stop was called.
func (g *Group) Stopped() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.stopped
}

// Stop cancels what the group runs and waits for its goroutines, at most
// until ctx is done. It may be called more than once.
func (g *Group) Stop(ctx context.Context) error {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
	g.cancel()
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("goroutines still running: %w", ctx.Err())
	}
}
