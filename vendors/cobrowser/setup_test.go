package cobrowser

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// TestStoppedRefusesWork: once stopped, the vendor says so in Health,
// refuses to start, to register a chat and to run a goroutine.
func TestStoppedRefusesWork(t *testing.T) {
	v, err := Build(connector.VendorEnv{Instance: instance(validKeys()), Logger: zap.NewNop(), Sink: newSink()})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if h := v.Health(); h.Ready || h.Detail != "stopped" {
		t.Errorf("Health after Stop = %+v, want not ready, stopped", h)
	}
	if err := v.Start(context.Background()); !errors.Is(err, errStopped) {
		t.Errorf("Start after Stop = %v, want errStopped", err)
	}
	s := v.newSession(conversation(), sessionState{})
	if v.register(s) {
		t.Error("register after Stop took the session")
	}
	// A stream logged in while Stop ran is closed, not left open.
	closed := &closeCounter{}
	st := &stream{done: make(chan struct{}), closer: closed}
	if v.launch(s, st) {
		t.Error("launch after Stop started the session")
	}
	if closed.n != 1 {
		t.Errorf("launch after Stop closed the stream's transport %d times, want 1", closed.n)
	}
	if v.group.Go(func(context.Context) { t.Error("a goroutine ran after Stop") }) {
		t.Error("Go after Stop reported true")
	}
}

// TestStopGivesUpWithinItsContext: a goroutine that does not end holds
// Stop only until Stop's context ends, and the error says so.
func TestStopGivesUpWithinItsContext(t *testing.T) {
	v, err := Build(connector.VendorEnv{Instance: instance(validKeys()), Logger: zap.NewNop(), Sink: newSink()})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	ended := make(chan struct{})
	if !v.group.Go(func(context.Context) {
		defer close(ended)
		<-release // ignores its context on purpose
	}) {
		t.Fatal("Go refused before Stop")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = v.Stop(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Stop = %v, want a deadline error", err)
	}
	close(release)
	<-ended
	if err := v.Stop(context.Background()); err != nil {
		t.Errorf("second Stop, goroutine ended = %v", err)
	}
}

// closeCounter is a transport that counts its Close calls.
type closeCounter struct{ n int }

func (c *closeCounter) Close() error { c.n++; return nil }
