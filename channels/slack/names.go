package slack

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/slack-go/slack"
)

// person is what users.info tells about a Slack user.
type person struct {
	Name  string // display name, else real name, else user name
	Email string // empty without the users:read.email scope
}

// nameCache keeps users' and channels' names for a while: every customer
// message needs its author's, and users.info is rate limited. Each kind
// keeps at most max entries.
//
// A lookup runs on its own, bounded by lookupTimeout, and whoever needs the
// name waits for it only as long as its own context allows: a commit waits
// a moment for its author, and if Slack answers later the name is cached
// for the next message. One lookup per name runs at a time, at most
// maxLookups in all, none while a 429 holds users.info or
// conversations.info back.
type nameCache struct {
	api *slack.Client

	ctx    context.Context // ends at close: lookups stop
	cancel context.CancelFunc
	wg     sync.WaitGroup // running lookups

	mu       sync.Mutex
	users    *lru[string, person] // a zero person: Slack does not know the id
	channels *lru[string, string] // "": Slack does not know the id
	flights  map[ref]chan struct{}
	held     time.Time // no lookup before: a 429's Retry-After
}

const (
	// lookupTimeout bounds one users.info or conversations.info call (as
	// does request_timeout); those waiting for it may give up sooner
	// (authorWait, resolveWait).
	lookupTimeout = 10 * time.Second
	// maxLookups bounds the lookups running at once: past it a name is not
	// looked up (it reads as its id).
	maxLookups = 32
)

func newNameCache(api *slack.Client, ttl time.Duration, max int) *nameCache {
	ctx, cancel := context.WithCancel(context.Background())
	return &nameCache{api: api, ctx: ctx, cancel: cancel, flights: map[ref]chan struct{}{},
		users: newLRU[string, person](max, ttl), channels: newLRU[string, string](max, ttl)}
}

// close stops running lookups and waits for them; later lookups are not
// made (the cache still answers).
func (n *nameCache) close() {
	n.mu.Lock()
	n.cancel()
	n.mu.Unlock()
	n.wg.Wait()
}

// user is id's person: from the cache, else from users.info if it answers
// while ctx lasts.
func (n *nameCache) user(ctx context.Context, id string) (person, bool) {
	r := ref{kind: '@', id: id}
	if p, ok := n.cachedUser(id); ok {
		return p, p.Name != ""
	}
	n.wait(ctx, n.start(r))
	p, _ := n.cachedUser(id)
	return p, p.Name != ""
}

// names looks up every reference at once and returns those named before
// ctx ends.
func (n *nameCache) names(ctx context.Context, refs []ref) map[ref]string {
	var pending []chan struct{}
	for _, r := range refs {
		if _, ok := n.cached(r); !ok {
			pending = append(pending, n.start(r))
		}
	}
	for _, done := range pending {
		n.wait(ctx, done)
	}
	out := make(map[ref]string, len(refs))
	for _, r := range refs {
		if name, _ := n.cached(r); name != "" {
			out[r] = name
		}
	}
	return out
}

// prefetch starts the lookups of refs that are not cached, without
// waiting; only of as many as Resolve names.
func (n *nameCache) prefetch(refs []ref) {
	for _, r := range refs[:min(len(refs), maxResolved)] {
		if _, ok := n.cached(r); !ok {
			n.start(r)
		}
	}
}

func (n *nameCache) cachedUser(id string) (person, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.users.get(id, time.Now())
}

// cached is r's name; ok says whether the cache holds an answer for r.
func (n *nameCache) cached(r ref) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r.kind == '@' {
		p, ok := n.users.get(r.id, time.Now())
		return p.Name, ok
	}
	return n.channels.get(r.id, time.Now())
}

// wait waits for a lookup (nil: none) to end or ctx to.
func (n *nameCache) wait(ctx context.Context, done chan struct{}) {
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// start begins looking r up, or joins the lookup already running; nil when
// none can run (closed, too many running, held by a 429).
func (n *nameCache) start(r ref) chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if done, ok := n.flights[r]; ok {
		return done
	}
	if n.ctx.Err() != nil || len(n.flights) >= maxLookups || time.Now().Before(n.held) {
		return nil
	}
	done := make(chan struct{})
	n.flights[r] = done
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer func() {
			n.mu.Lock()
			delete(n.flights, r)
			n.mu.Unlock()
			close(done)
		}()
		n.lookup(r)
	}()
	return done
}

// lookup asks Slack for r's name and caches the answer: a name, or none
// when Slack answered that it does not know the id (not asked again while
// cached). No answer, a 5xx or a 429 caches nothing; a 429 holds lookups
// back for its Retry-After.
func (n *nameCache) lookup(r ref) {
	ctx, cancel := context.WithTimeout(n.ctx, lookupTimeout)
	defer cancel()
	var p person
	var err error
	if r.kind == '@' {
		var u *slack.User
		if u, err = n.api.GetUserInfoContext(ctx, r.id); err == nil {
			p = person{Name: firstOf(u.Profile.DisplayName, u.Profile.RealName, u.RealName, u.Name), Email: u.Profile.Email}
		}
	} else {
		var ch *slack.Channel
		if ch, err = n.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: r.id}); err == nil {
			p.Name = ch.Name
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var rl *slack.RateLimitedError
	switch {
	case errors.As(err, &rl):
		n.held = time.Now().Add(max(rl.RetryAfter, time.Second))
		return
	case err != nil && !answered(err):
		return
	}
	if r.kind == '@' {
		n.users.put(r.id, p, time.Now())
	} else {
		n.channels.put(r.id, p.Name, time.Now())
	}
}

// answered reports whether err is Slack's own answer about the id
// (user_not_found, channel_not_found...), not a failure to get one.
func answered(err error) bool {
	code := slackCode(err)
	return code != "" && !authCodes[code] && !transientCodes[code]
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
