package centiontest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// get calls a path under the base URL with the server's Origin and decodes
// a JSON answer into v (nil: returns the body as it is).
func get(t *testing.T, s *Server, path string, v any) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", s.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", s.Origin())
	return do(t, req, v)
}

func do(t *testing.T, req *http.Request, v any) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v in %q", req.URL.Path, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

func TestCanChatAndAgentList(t *testing.T) {
	s := NewServer(t, Config{})
	var a canChatAnswer
	get(t, s, "/socket/external.api/canchat?area=2", &a)
	if !a.ChatOpen || a.AgentsAvailable != 1 || a.Error != "" || a.Feature["chat.attachment"] != true {
		t.Errorf("canchat %+v", a)
	}
	s.SetAgents()
	get(t, s, "/socket/external.api/canchat?area=2", &a)
	if !a.ChatOpen || a.AgentsAvailable != 0 {
		t.Errorf("canchat without agents %+v", a)
	}
	s.SetCanChat(false)
	s.SetAgents("Alice", "Bob")
	a = canChatAnswer{}
	get(t, s, "/socket/external.api/canchat?area=2", &a)
	if a.ChatOpen || a.AgentsAvailable != 0 {
		t.Errorf("canchat switched off %+v", a)
	}
	a = canChatAnswer{}
	get(t, s, "/socket/external.api/canchat?area=9", &a)
	if a.Error != errInvalidArea {
		t.Errorf("canchat for another area %+v", a)
	}

	var list struct{ Agents []agentEntry }
	get(t, s, "/socket/external.api/agentlist?areas=1,2&who=active", &list)
	if diff := cmp.Diff([]agentEntry{{1, "Alice"}, {2, "Bob"}}, list.Agents); diff != "" {
		t.Errorf("agentlist (-want +got):\n%s", diff)
	}
	get(t, s, "/socket/external.api/agentlist?areas=5&who=active", &list)
	if len(list.Agents) != 0 {
		t.Errorf("agentlist of another area %+v", list.Agents)
	}
}

// postUpload posts a file as the SDK's upload form does.
func postUpload(t *testing.T, s *Server, secret, name string, data []byte) (int, uploadAnswer) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("uploadfile", name)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(data)
	for k, v := range map[string]string{"session": "101", "area": "2", "sessionSecret": secret, "random": "42"} {
		mw.WriteField(k, v)
	}
	mw.Close()
	req, err := http.NewRequest("POST", s.URL()+uploadPath, &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", s.Origin())
	var a uploadAnswer
	code, _ := do(t, req, &a)
	return code, a
}

func TestUploadAttachmentAndHistory(t *testing.T) {
	s := NewServer(t, Config{MaxUpload: 1000})
	c := dial(t, s, "t1")
	sess := c.register("John", "hi", 2)
	c.expect(evNewMessage)

	if code, a := postUpload(t, s, "wrong", "a.txt", []byte("x")); code != http.StatusForbidden {
		t.Errorf("upload with a wrong secret: %d %+v", code, a)
	}
	if code, _ := postUpload(t, s, sess.SessionSecret, "big.bin", make([]byte, 1001)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("upload over MaxUpload: %d", code)
	}
	code, a := postUpload(t, s, sess.SessionSecret, "a.txt", []byte("file body"))
	if code != http.StatusOK || a.Value != "a.txt" || a.Size != 9 || a.SizeHuman != "9 B" || a.Download == "" {
		t.Fatalf("upload: %d %+v", code, a)
	}
	if _, body := get(t, s, a.Download+"?t="+sess.SessionSecret, nil); body != "file body" {
		t.Errorf("download %q", body)
	}
	if code, _ := get(t, s, a.Download+"?t=wrong", nil); code != http.StatusNotFound {
		t.Errorf("download with a wrong secret: %d", code)
	}

	// The SDK's way: add attachment with the upload's answer, then the
	// file notice as a chat message.
	file, _ := json.Marshal(a)
	c.send(frameAttachment, map[string]any{"area": 2, "file": json.RawMessage(file), "sessionSecret": sess.SessionSecret})
	notice := fileNoticeText(a.Value, a.Download+"?t="+sess.SessionSecret, a.SizeHuman)
	c.line("c-1", notice, 1)
	c.expect(evNewMessage)
	ch, _ := s.Chat("t1")
	if len(ch.Attachments) != 1 || ch.Attachments[0].File != string(file) || ch.Attachments[0].SessionSecret != sess.SessionSecret {
		t.Errorf("attachments %+v", ch.Attachments)
	}
	if n, ok := ParseFileNotice(ch.Lines[0].Text); !ok || n.FileName != "a.txt" {
		t.Errorf("file notice line %q", ch.Lines[0].Text)
	}
	ups := s.Uploads()
	if len(ups) != 1 || ups[0].Token != "t1" || string(ups[0].Data) != "file body" || ups[0].Area != 2 || ups[0].Session != "101" {
		t.Errorf("uploads %+v", ups)
	}

	must(t, s.Join("t1", "Alice"))
	must(t, s.Say("t1", "<b>got it</b>"))
	code, page := get(t, s, "/socket/external.api/savehistory?area=2&secret="+sess.SessionSecret, nil)
	if code != http.StatusOK || !strings.Contains(page, "<b>John</b>: hi") || !strings.Contains(page, "<b>Alice</b>: <b>got it</b>") {
		t.Errorf("savehistory %d %q", code, page)
	}
	if code, _ := get(t, s, "/socket/external.api/savehistory?area=2&secret=nope", nil); code != http.StatusForbidden {
		t.Errorf("savehistory with a wrong secret: %d", code)
	}
}
