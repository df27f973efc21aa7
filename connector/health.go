package connector

import "fmt"

// Checker is an adapter that can tell whether it is really connected: a
// socket that said hello and still answers, not a process that merely runs.
// /readyz, connectord_adapter_up, the systemd STATUS= line and the watchdog
// read it; Health must not block, and its Detail must name no secret (the
// core also strips userinfo and queries from any URL in it).
type Checker interface {
	Health() Health
}

// Health is an adapter's real connection state.
type Health struct {
	Ready  bool   `json:"ready"`
	Detail string `json:"detail,omitempty"`
}

// Chats sums the health of a vendor's per-chat connections (a socket, a
// stream, a queue poll each) for its Health: how many there are, how many
// are down, and the first down one by conversation id, so that the detail
// does not change with map order.
type Chats struct {
	Total, Down int
	first       int64
	why         Health
}

// Add counts conversation id's connection, whose state is h.
func (a *Chats) Add(id int64, h Health) {
	a.Total++
	if h.Ready {
		return
	}
	a.Down++
	if a.Down == 1 || id < a.first {
		a.first, a.why = id, h
	}
}

// Trouble is the not-ready Health naming what is down, as "2 of 5 chat
// sockets down, reconnecting (conversation 7: why)"; what names the kind
// of connection ("chat sockets") and doing what the vendor does about it.
func (a *Chats) Trouble(what, doing string) Health {
	return Health{Detail: fmt.Sprintf("%d of %d %s down, %s (conversation %d: %s)", a.Down, a.Total, what, doing, a.first, a.why.Detail)}
}
