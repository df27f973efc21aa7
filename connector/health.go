package connector

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
