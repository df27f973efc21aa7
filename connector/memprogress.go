package connector

import (
	"bytes"
	"context"
	"sync"
)

// MemoryProgress is a SendProgress in this process's memory, for an adapter
// built without the core (tests, tools) and for the conformance suites: a
// restart forgets it. It holds at most max records; a new record past that
// pushes out an older one, so that message resumes from its start.
type MemoryProgress struct {
	mu  sync.Mutex
	max int
	m   map[int64][]byte
}

var _ SendProgress = (*MemoryProgress)(nil)

// NewMemoryProgress returns an empty MemoryProgress of at most max records.
func NewMemoryProgress(max int) *MemoryProgress {
	return &MemoryProgress{max: max, m: map[int64][]byte{}}
}

// LoadProgress implements SendProgress.
func (p *MemoryProgress) LoadProgress(_ context.Context, id int64) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.m[id]), nil
}

// SaveProgress implements SendProgress; a nil record drops the message's.
func (p *MemoryProgress) SaveProgress(_ context.Context, id int64, b []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b == nil {
		delete(p.m, id)
		return nil
	}
	if _, known := p.m[id]; !known && len(p.m) >= p.max {
		for old := range p.m {
			delete(p.m, old)
			break
		}
	}
	p.m[id] = bytes.Clone(b)
	return nil
}

// Drop forgets message id's record: the core does that when it records the
// message sent or failed; an adapter standing in for the core does it itself.
func (p *MemoryProgress) Drop(id int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.m, id)
}

// Len is how many records are kept.
func (p *MemoryProgress) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.m)
}
