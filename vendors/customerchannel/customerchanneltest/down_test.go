package customerchanneltest

import (
	"fmt"
	"net/http"
	"testing"
	"time"
)

// upgrade asks for a WebSocket session, the way connectord's client opens one, and
// returns the status: 101 when the server takes it.
func upgrade(t *testing.T, s *Server) int {
	t.Helper()
	url := fmt.Sprintf("%s/socket.io/?EIO=%d&transport=websocket", s.URL, s.EIO)
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := (&http.Transport{DisableKeepAlives: true}).RoundTrip(req)
	if err != nil {
		return 0 // the connection was cut: refused as well
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDown: an outage cuts every session and refuses handshakes and REST until it ends,
// while the control API keeps answering; afterwards everything works again.
func TestDown(t *testing.T) {
	eios(t, func(t *testing.T, s *Server) {
		ctx := ctxT(t)
		if got := upgrade(t, s); got != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade before the outage: %d, want 101", got)
		}
		c := dialPolling(t, s)
		if err := s.WaitFor(ctx, func(st State) bool { return len(st.Connected) >= 1 }); err != nil {
			t.Fatal(err)
		}

		if err := s.SetDown(ctx, true); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.closed:
		case <-time.After(5 * time.Second):
			t.Fatal("the session survived the outage")
		}
		st, err := s.State(ctx)
		if err != nil {
			t.Fatalf("control API during the outage: %v", err)
		}
		if !st.Down || len(st.Connected) != 0 {
			t.Errorf("during the outage: down %v, connected %v", st.Down, st.Connected)
		}
		if got := upgrade(t, s); got != http.StatusBadRequest {
			t.Errorf("WebSocket handshake during the outage: %d, want 400", got)
		}
		status, _, _ := call(t, http.MethodGet, fmt.Sprintf("%s/socket.io/?EIO=%d&transport=polling", s.URL, s.EIO), "")
		if status != http.StatusForbidden {
			t.Errorf("polling handshake during the outage: %d, want 403", status)
		}
		status, _, body := call(t, http.MethodPost, s.URL+"/api/customer/init", `{"firstName":"Ann","channel":"sms"}`)
		if status != http.StatusServiceUnavailable {
			t.Errorf("init during the outage: %d %s, want 503", status, body)
		}

		if err := s.SetDown(ctx, false); err != nil {
			t.Fatal(err)
		}
		if got := upgrade(t, s); got != http.StatusSwitchingProtocols {
			t.Errorf("upgrade after the outage: %d, want 101", got)
		}
		c2 := dialPolling(t, s)
		r := initChat(t, s, `{"firstName":"Ann","channel":"sms"}`)
		c2.emit("joinConversation", map[string]string{"conversationId": r.ConversationID, "id": r.Participant.ID, "name": "Ann"})
		c2.next("messageArrived")
		if st, err := s.State(ctx); err != nil || st.Down {
			t.Errorf("after the outage: down %v (%v)", st.Down, err)
		}
		if err := s.post(ctx, "/_sim/down", map[string]any{"down": "yes"}, nil); err == nil {
			t.Error("a non-boolean down accepted")
		}
	})
}
