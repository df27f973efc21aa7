package slack

import "sync"

// lanes runs functions in order per key and in parallel across keys: the
// events of one conversation are committed in the order Slack sent them,
// while a slow one (a users.info lookup) holds up no other conversation.
// A lane's goroutine exits when its queue is empty.
type lanes struct {
	mu     sync.Mutex
	queues map[string][]func()
	wg     sync.WaitGroup
}

func newLanes() *lanes { return &lanes{queues: map[string][]func(){}} }

// run queues f on key's lane.
func (l *lanes) run(key string, f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if q, busy := l.queues[key]; busy {
		l.queues[key] = append(q, f)
		return
	}
	l.queues[key] = []func(){f}
	l.wg.Add(1)
	go l.drain(key)
}

func (l *lanes) drain(key string) {
	defer l.wg.Done()
	for {
		l.mu.Lock()
		q := l.queues[key]
		if len(q) == 0 {
			delete(l.queues, key)
			l.mu.Unlock()
			return
		}
		f := q[0]
		q[0] = nil
		l.queues[key] = q[1:]
		l.mu.Unlock()
		f()
	}
}

// wait returns once every queued function has run.
func (l *lanes) wait() { l.wg.Wait() }
