package slack

import (
	"context"
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
// message needs its author's, and users.info is rate limited.
type nameCache struct {
	api *slack.Client
	ttl time.Duration

	mu       sync.Mutex
	users    map[string]cached[person]
	channels map[string]cached[string]
}

type cached[T any] struct {
	v   T
	exp time.Time
}

func newNameCache(api *slack.Client, ttl time.Duration) *nameCache {
	return &nameCache{api: api, ttl: ttl, users: map[string]cached[person]{}, channels: map[string]cached[string]{}}
}

// lookupTimeout bounds one lookup: a name is nice to have, not worth holding
// a message up for (an Events API request has 3 s in all).
const lookupTimeout = time.Second

func (n *nameCache) user(ctx context.Context, id string) (person, bool) {
	n.mu.Lock()
	if e, ok := n.users[id]; ok && time.Now().Before(e.exp) {
		n.mu.Unlock()
		return e.v, true
	}
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	u, err := n.api.GetUserInfoContext(ctx, id)
	if err != nil {
		return person{}, false
	}
	p := person{Name: firstOf(u.Profile.DisplayName, u.Profile.RealName, u.RealName, u.Name), Email: u.Profile.Email}
	n.mu.Lock()
	n.users[id] = cached[person]{p, time.Now().Add(n.ttl)}
	n.mu.Unlock()
	return p, true
}

func (n *nameCache) channel(ctx context.Context, id string) (string, bool) {
	n.mu.Lock()
	if e, ok := n.channels[id]; ok && time.Now().Before(e.exp) {
		n.mu.Unlock()
		return e.v, true
	}
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	ch, err := n.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: id})
	if err != nil || ch.Name == "" {
		return "", false
	}
	n.mu.Lock()
	n.channels[id] = cached[string]{ch.Name, time.Now().Add(n.ttl)}
	n.mu.Unlock()
	return ch.Name, true
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
