package connector

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// Stop cancels the goroutines' context and the bound calls, waits for the
// goroutines, and refuses new ones.
func TestGroupStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGroup()
		ended := false
		if !g.Go(func(ctx context.Context) { <-ctx.Done(); time.Sleep(time.Second); ended = true }) {
			t.Fatal("Go refused before Stop")
		}
		call, cancel := g.Bind(context.Background())
		defer cancel()
		if err := g.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !ended {
			t.Error("Stop returned before its goroutine ended")
		}
		if call.Err() == nil {
			t.Error("a bound call was not cancelled by Stop")
		}
		if g.Go(func(context.Context) { t.Error("ran after Stop") }) || !g.Stopped() {
			t.Error("Go accepted after Stop")
		}
		select {
		case <-g.Done():
		default:
			t.Error("Done not closed after Stop")
		}
	})
}

// Stop gives up at its deadline on a goroutine that does not end; a bound
// call's own cancel leaves the group running.
func TestGroupStopDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := NewGroup()
		release := make(chan struct{})
		g.Go(func(context.Context) { <-release })
		call, cancel := g.Bind(context.Background())
		cancel()
		if call.Err() == nil || g.Stopped() {
			t.Fatal("a bound call's cancel did not end it, or stopped the group")
		}
		ctx, stop := context.WithTimeout(context.Background(), time.Second)
		defer stop()
		if err := g.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Stop with a stuck goroutine = %v", err)
		}
		close(release)
		if err := g.Stop(context.Background()); err != nil {
			t.Errorf("second Stop: %v", err)
		}
	})
}
