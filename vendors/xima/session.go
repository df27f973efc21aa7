package xima

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// sessionState is what the core stores as the conversation's session: all
// a new process needs to go on with the chat.
type sessionState struct {
	// Chat is the chat session id: still-here, /chat and the session check
	// name it.
	Chat string `json:"chat"`
	// Queue is the chat's serverToClientQueue URL.
	Queue string `json:"queue"`
	// Cookies is the chat's browser session; /chat/end finds the chat by it.
	Cookies []cookie `json:"cookies,omitempty"`
	// Seen is the ids of the newest queue messages whose effects are stored
	// (committed with them): a message delivered again after a restart,
	// because its delete did not happen, is recognised and only deleted.
	Seen []string `json:"seen,omitempty"`
}

// maxSession bounds a stored session: 16 cookies of at most 4 KiB, 32 ids
// and two URLs are well under it.
const maxSession = 96 << 10

// maxSeenStored is how many message ids the session keeps.
const maxSeenStored = 32

func (st sessionState) marshal() json.RawMessage {
	if len(st.Seen) > maxSeenStored {
		st.Seen = st.Seen[len(st.Seen)-maxSeenStored:]
	}
	b, err := json.Marshal(st)
	if err != nil { // strings and times only: cannot happen
		panic(fmt.Sprintf("xima session: %v", err))
	}
	return b
}

// parseSession reads a stored session, checking every bound.
func parseSession(raw json.RawMessage) (sessionState, error) {
	var st sessionState
	if len(raw) > maxSession {
		return st, fmt.Errorf("xima session of %d bytes, at most %d", len(raw), maxSession)
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return sessionState{}, fmt.Errorf("xima session: %w", err)
	}
	switch {
	case st.Chat == "" || len(st.Chat) > maxID:
		return sessionState{}, fmt.Errorf("xima session: no usable chat id")
	case st.Queue == "" || len(st.Queue) > maxQueueURL:
		return sessionState{}, fmt.Errorf("xima session: no usable queue url")
	}
	st.Cookies = newJar(st.Cookies).cookies
	st.Seen = slices.DeleteFunc(st.Seen, func(id string) bool { return id == "" || len(id) > maxID })
	if len(st.Seen) > maxSeenStored {
		st.Seen = st.Seen[len(st.Seen)-maxSeenStored:]
	}
	return st, nil
}

// seenRing remembers the newest message ids of a chat, oldest first.
type seenRing struct {
	ids []string
	max int
}

func newSeen(stored []string, max int) *seenRing {
	r := &seenRing{max: max}
	for _, id := range stored {
		r.add(id)
	}
	return r
}

func (r *seenRing) has(id string) bool { return slices.Contains(r.ids, id) }

func (r *seenRing) add(id string) {
	if id == "" || r.has(id) {
		return
	}
	if len(r.ids) >= r.max {
		r.ids = slices.Delete(r.ids, 0, len(r.ids)-r.max+1)
	}
	r.ids = append(r.ids, id)
}

// newest returns the newest n ids, oldest first.
func (r *seenRing) newest(n int) []string {
	if len(r.ids) <= n {
		return slices.Clone(r.ids)
	}
	return slices.Clone(r.ids[len(r.ids)-n:])
}

// redactQueue is a queue URL for logs: the queue's name, not its account.
func redactQueue(u string) string {
	if i := strings.LastIndexByte(u, '/'); i >= 0 && i+1 < len(u) {
		return u[i+1:]
	}
	return u
}
