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
// message needs its author's, and users.info is rate limited. Each kind
// keeps at most max entries.
type nameCache struct {
	api *slack.Client

	mu       sync.Mutex
	users    *lru[string, person]
	channels *lru[string, string]
}

func newNameCache(api *slack.Client, ttl time.Duration, max int) *nameCache {
	return &nameCache{api: api, users: newLRU[string, person](max, ttl), channels: newLRU[string, string](max, ttl)}
}

// lookupTimeout bounds one lookup: a name is nice to have, not worth holding
// a message up for (an Events API request has 3 s in all).
const lookupTimeout = time.Second

func (n *nameCache) user(ctx context.Context, id string) (person, bool) {
	n.mu.Lock()
	p, ok := n.users.get(id, time.Now())
	n.mu.Unlock()
	if ok {
		return p, true
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	u, err := n.api.GetUserInfoContext(ctx, id)
	if err != nil {
		return person{}, false
	}
	p = person{Name: firstOf(u.Profile.DisplayName, u.Profile.RealName, u.RealName, u.Name), Email: u.Profile.Email}
	n.mu.Lock()
	n.users.put(id, p, time.Now())
	n.mu.Unlock()
	return p, true
}

func (n *nameCache) channel(ctx context.Context, id string) (string, bool) {
	n.mu.Lock()
	name, ok := n.channels.get(id, time.Now())
	n.mu.Unlock()
	if ok {
		return name, true
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	ch, err := n.api.GetConversationInfoContext(ctx, &slack.GetConversationInfoInput{ChannelID: id})
	if err != nil || ch.Name == "" {
		return "", false
	}
	n.mu.Lock()
	n.channels.put(id, ch.Name, time.Now())
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
