package customerchanneltest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A control API answer is read up to a bound, not whatever the peer sends.
func TestAnswerBounded(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"eio":4,"pad":"` + strings.Repeat("x", 4096) + `"}`))
	}))
	defer hs.Close()
	s := &Server{URL: hs.URL, client: hs.Client(), maxAnswer: 1024}
	_, err := s.State(context.Background())
	if err == nil || !strings.Contains(err.Error(), "larger than 1024 bytes") {
		t.Fatalf("err = %v, want the bound named", err)
	}
	s.maxAnswer = 8192
	if st, err := s.State(context.Background()); err != nil || st.EIO != 4 {
		t.Fatalf("within the bound: %+v, %v", st, err)
	}
}
