package customerchanneltest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// eios runs f as a parallel subtest for Engine.IO 3 and 4, each with its own simulator.
func eios(t *testing.T, f func(t *testing.T, s *Server)) {
	for _, eio := range []int{3, 4} {
		t.Run("eio"+strconv.Itoa(eio), func(t *testing.T) {
			t.Parallel()
			// A missing Node.js or node_modules fails here with the command to run; it is
			// never skipped (CI must not go green without the simulator).
			s := StartTest(t, eio)
			f(t, s)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// call does one HTTP request against the simulator and returns status and body.
func call(t *testing.T, method, url, body string) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctxT(t), method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, data
}

type initResponse struct {
	ConversationID string      `json:"conversationId"`
	Participant    Participant `json:"participant"`
	RequestID      string      `json:"requestId"`
	Timestamp      string      `json:"timestamp"`
}

func initChat(t *testing.T, s *Server, body string) initResponse {
	t.Helper()
	status, _, data := call(t, http.MethodPost, s.URL+"/api/customer/init", body)
	if status != http.StatusOK {
		t.Fatalf("init: %d %s", status, data)
	}
	var r initResponse
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("init: %v: %s", err, data)
	}
	return r
}

func TestREST(t *testing.T) {
	eios(t, func(t *testing.T, s *Server) {
		ctx := ctxT(t)
		st, err := s.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.EIO != s.EIO || st.SocketIO == "" {
			t.Errorf("state eio %d socket.io %q, want eio %d", st.EIO, st.SocketIO, s.EIO)
		}
		wantMajor := map[int]string{3: "2.", 4: "4."}[s.EIO]
		if !strings.HasPrefix(st.SocketIO, wantMajor) {
			t.Errorf("socket.io %s for eio %d", st.SocketIO, s.EIO)
		}

		// channel is required.
		status, _, data := call(t, http.MethodPost, s.URL+"/api/customer/init", `{"firstName":"Ann","phone":"+41790000000"}`)
		if status != http.StatusBadRequest {
			t.Errorf("init without channel: %d %s, want 400", status, data)
		}
		status, _, _ = call(t, http.MethodPost, s.URL+"/api/customer/init", `not json`)
		if status != http.StatusBadRequest {
			t.Errorf("init with bad JSON: %d, want 400", status)
		}

		body := `{"firstName":"Ann","lastName":"Smith","email":"ann@example.com","phone":"+41790000000",` +
			`"channel":"sms","language":"en","refId":"+41790000000","subject":"support",` +
			`"requestId":"req-1","timestamp":"2026-01-02T03:04:05Z","url":"https://example.com/x","comment":"hi"}`
		r := initChat(t, s, body)
		if r.ConversationID == "" || r.Participant.ID == "" || r.Participant.Name != "Ann Smith" || r.RequestID != "req-1" {
			t.Errorf("init response %+v", r)
		}
		if _, err := time.Parse(time.RFC3339, r.Timestamp); err != nil {
			t.Errorf("timestamp %q: %v", r.Timestamp, err)
		}

		st, err = s.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Inits) != 1 {
			t.Fatalf("inits %v, want 1", st.Inits)
		}
		var want map[string]any
		_ = json.Unmarshal([]byte(body), &want)
		for k, v := range want {
			if st.Inits[0][k] != v {
				t.Errorf("recorded init %s = %v, want %v", k, st.Inits[0][k], v)
			}
		}
		if len(st.Rejected) != 2 || st.Rejected[0].Body["firstName"] != "Ann" {
			t.Errorf("rejected %+v, want the 2 bad inits", st.Rejected)
		}
		c := st.Conversation(r.ConversationID)
		if c == nil || c.CustomerParticipantID != r.Participant.ID || c.Channel != "sms" || c.Ended {
			t.Fatalf("conversation %+v", c)
		}

		// Transcript: 404 while live and for unknown conversations.
		for _, typ := range []string{"pdf", "email"} {
			if status, _, data := call(t, http.MethodGet, s.URL+"/api/customer/transcript/"+r.ConversationID+"/"+typ, ""); status != http.StatusNotFound {
				t.Errorf("live transcript %s: %d %s, want 404", typ, status, data)
			}
		}
		if status, _, _ := call(t, http.MethodGet, s.URL+"/api/customer/transcript/nope/pdf", ""); status != http.StatusNotFound {
			t.Errorf("unknown transcript: %d, want 404", status)
		}

		// An injected 503, once.
		if err := s.Fail(ctx, "/api/customer/init", http.StatusServiceUnavailable, 1); err != nil {
			t.Fatal(err)
		}
		if status, _, data := call(t, http.MethodPost, s.URL+"/api/customer/init", `{"channel":"sms"}`); status != http.StatusServiceUnavailable {
			t.Errorf("init after Fail: %d %s, want 503", status, data)
		}
		initChat(t, s, `{"channel":"sms","firstName":"Bob"}`)
		// Prefix match for transcripts, twice.
		if err := s.Fail(ctx, "/api/customer/transcript/*", http.StatusInternalServerError, 2); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			status, _, _ := call(t, http.MethodGet, s.URL+"/api/customer/transcript/x/pdf", "")
			if want := map[bool]int{true: 500, false: 404}[i < 2]; status != want {
				t.Errorf("transcript %d after Fail: %d, want %d", i, status, want)
			}
		}
		if err := s.Fail(ctx, "no-slash", 503, 1); err == nil {
			t.Error("Fail accepted a path without /")
		}

		// Campaign without any connector: an id, delivered to nobody.
		id, err := s.Campaign(ctx, "+41790000000", "sale", "", "sms")
		if err != nil || id == "" {
			t.Fatalf("campaign: %q %v", id, err)
		}
		if id2, err := s.Campaign(ctx, "+41790000000", "sale", "fixed-id", ""); err != nil || id2 != "fixed-id" {
			t.Errorf("campaign with id: %q %v", id2, err)
		}

		st, err = s.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Inits) != 2 || len(st.Conversations) != 2 || len(st.Campaigns) != 2 || len(st.Campaigns[0].DeliveredTo) != 0 {
			t.Errorf("state before reset: %d inits, %d conversations, campaigns %+v", len(st.Inits), len(st.Conversations), st.Campaigns)
		}
		if len(st.Requests) != 11 {
			t.Errorf("requests %+v, want 11", st.Requests)
		}

		if err := s.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		st, err = s.State(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Inits)+len(st.Conversations)+len(st.Requests)+len(st.Campaigns)+len(st.Connectors)+st.Connections != 0 {
			t.Errorf("state after reset: %+v", st)
		}
		if err := s.WaitFor(ctx, func(st State) bool { return len(st.Conversations) == 0 }); err != nil {
			t.Error(err)
		}
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := s.WaitFor(short, func(st State) bool { return len(st.Conversations) == 1 }); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("WaitFor on a false condition: %v", err)
		}
		if err := s.Agent(ctx, AgentAction{ConversationID: "nope", Action: "say", Text: "x"}); err == nil {
			t.Error("agent action on an unknown conversation did not fail")
		}

		// Close stops node and leaves no process behind.
		pid := s.Pid()
		s.Close()
		s.Close()
		if exited, _ := s.Exited(); !exited {
			t.Fatal("node still running after Close")
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d after Close: kill 0 = %v, want ESRCH", pid, err)
		}
	})
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(context.Background(), 5); err == nil {
		t.Error("eio 5 accepted")
	}
	if err := Requirements(); err != nil {
		t.Fatalf("requirements: %v", err)
	}
	// Without node on PATH the error says what to install.
	t.Setenv("PATH", t.TempDir())
	_, err := Start(context.Background(), 4)
	if err == nil || !strings.Contains(err.Error(), "apt-get install nodejs npm") || !strings.Contains(err.Error(), "npm ci --prefix "+Dir()) {
		t.Errorf("error without node: %v", err)
	}
}

func TestStopsWhenStdinCloses(t *testing.T) {
	s := StartTest(t, 4)
	_ = s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(3 * time.Second):
		t.Fatal("node did not exit after its stdin closed")
	}
	if !bytes.Contains([]byte(s.Logs()), []byte("stdin closed")) {
		t.Errorf("log: %s", s.Logs())
	}
}
