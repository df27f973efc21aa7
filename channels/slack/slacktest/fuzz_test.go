package slacktest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzReadParams: whatever a client posts, the fake reads its arguments
// without panicking, never keeps the token among them, and reads no more
// text than it was sent (query and body).
func FuzzReadParams(f *testing.F) {
	f.Add("application/json; charset=utf-8", "", []byte(`{"channel":"C1","text":"hi","blocks":[{"type":"section"}],"token":"xoxb-1"}`))
	f.Add("application/x-www-form-urlencoded", "token=xoxb-1&x=1", []byte("channel=C1&text=hi%20there"))
	f.Add("multipart/form-data; boundary=b", "", []byte("--b\r\nContent-Disposition: form-data; name=\"channel\"\r\n\r\nC1\r\n--b--\r\n"))
	f.Add("application/json", "", []byte(`null`))
	f.Fuzz(func(t *testing.T, contentType, query string, body []byte) {
		req, err := http.NewRequest(http.MethodPost, "http://fake.test/api/chat.postMessage?"+query, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", contentType)
		p, _, _, _ := readParams(httptest.NewRecorder(), req)
		if _, has := p["token"]; has {
			t.Fatal("the token stayed among the arguments")
		}
		n := 0
		for k, v := range p {
			n += len(k) + len(v)
		}
		if n > len(query)+len(body) {
			t.Fatalf("%d bytes of arguments from %d bytes sent", n, len(query)+len(body))
		}
	})
}

// FuzzReadUpload: an upload body, raw or multipart, yields at most the bytes
// sent.
func FuzzReadUpload(f *testing.F) {
	f.Add("application/octet-stream", []byte("%PDF-1.4 invoice"))
	f.Add("multipart/form-data; boundary=b", []byte("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--b--\r\n"))
	f.Add("multipart/form-data; boundary=b", []byte("--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nplain field\r\n--b--\r\n"))
	f.Add("multipart/form-data; boundary=b", []byte("--b--\r\n"))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/upload/F1", bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		got, err := readUpload(req)
		if err == nil && len(got) > len(body) {
			t.Fatalf("%d bytes uploaded from a %d-byte body", len(got), len(body))
		}
	})
}
