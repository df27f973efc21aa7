package connector

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"
)

// persist runs write, a store write, until it succeeds, retrying with
// back-off while the store refuses. It returns early only with a Permanent
// error from write or once ctx is done. It is how the core records what a
// remote side has already done (a send, an opened chat, an agent event):
// the remote step is never repeated because its record failed.
func (r *Router) persist(ctx context.Context, what string, write func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := write(ctx)
		if err == nil || IsPermanent(err) || ctx.Err() != nil {
			return err
		}
		delay := r.backoff(attempt, err)
		r.log.Warn("store write failed; retrying it", zap.String("what", what), zap.Duration("in", delay), zap.Error(err))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

var _ LazyProgress = (*Router)(nil)

// LoadProgress implements SendProgress.
func (r *Router) LoadProgress(ctx context.Context, messageID int64) ([]byte, error) {
	return r.store.SendProgress(ctx, messageID)
}

// SaveProgress implements SendProgress.
func (r *Router) SaveProgress(ctx context.Context, messageID int64, p []byte) error {
	return r.saveProgress(ctx, messageID, p, r.store.SaveSendProgress)
}

// NoteProgress implements LazyProgress.
func (r *Router) NoteProgress(ctx context.Context, messageID int64, p []byte) error {
	return r.saveProgress(ctx, messageID, p, r.store.NoteSendProgress)
}

func (r *Router) saveProgress(ctx context.Context, messageID int64, p []byte, save func(context.Context, int64, []byte) error) error {
	return r.persist(ctx, "send progress", func(ctx context.Context) error {
		err := save(ctx, messageID, p)
		if errors.Is(err, ErrNotFound) {
			return Permanent(err)
		}
		return err
	})
}
