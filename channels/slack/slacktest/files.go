package slacktest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
)

// maxUpload bounds an uploaded file.
const maxUpload = 64 << 20

// fileEntry is a file shared in the workspace.
type fileEntry struct {
	File
	title   string
	user    string
	created int64
}

// upload is a file between files.getUploadURLExternal and
// files.completeUploadExternal.
type upload struct {
	id       string
	name     string
	length   int
	content  []byte
	uploaded bool
}

// addFileLocked registers f as shared by user and returns it with its ID and
// Mimetype filled. s.mu must be held.
func (s *Server) addFileLocked(f File, user, title string) File {
	if f.ID == "" {
		f.ID = newFileID()
	}
	if f.Mimetype == "" {
		f.Mimetype = guessMimetype(f.Name)
	}
	f.Content = bytes.Clone(f.Content)
	if title == "" {
		title = f.Name
	}
	s.files[f.ID] = &fileEntry{File: f, title: title, user: user, created: time.Now().Unix()}
	return f
}

// guessMimetype guesses from the extension, as Slack does for uploads.
func guessMimetype(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".txt", ".log", ".md":
		return "text/plain"
	case ".csv":
		return "text/csv"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		mt, _, _ := mime.ParseMediaType(t)
		return mt
	}
	return "application/octet-stream"
}

// filesGetUploadURLExternal reserves a file ID and an upload URL.
func (s *Server) filesGetUploadURLExternal(p params) result {
	name := p["filename"]
	length, good := p.int("length", 0)
	if name == "" || !good || length <= 0 {
		return fail("invalid_arguments")
	}
	if length > maxUpload {
		return fail("file_too_large")
	}
	id := newFileID()
	s.mu.Lock()
	s.uploads[id] = &upload{id: id, name: name, length: length}
	s.mu.Unlock()
	return ok(map[string]any{"upload_url": s.URL + "/upload/" + id, "file_id": id})
}

// handleUpload receives the bytes of a reserved upload, sent as the raw body or
// as the first file of a multipart form (slack-go sends the latter). Like
// Slack's upload URLs it needs no token, and answers "OK - <size>".
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id := strings.TrimPrefix(r.URL.Path, "/upload/")
	s.mu.Lock()
	up := s.uploads[id]
	s.mu.Unlock()
	if up == nil {
		http.Error(w, "unknown upload", http.StatusNotFound)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxUpload+1<<20)
	content, err := readUpload(r)
	if err != nil {
		http.Error(w, "bad upload: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	up.content = content
	up.uploaded = true
	s.changedLocked()
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "OK - %d", len(content))
}

func readUpload(r *http.Request) ([]byte, error) {
	ct, ctParams, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" {
		return io.ReadAll(r.Body)
	}
	mr := multipart.NewReader(r.Body, ctParams["boundary"])
	var field []byte // a "file" field sent as a plain value
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			if field != nil {
				return field, nil
			}
			return nil, errors.New("no file in the form")
		}
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(part)
		if err != nil {
			return nil, err
		}
		if part.FileName() != "" {
			return b, nil
		}
		if part.FormName() == "file" {
			field = b
		}
	}
}

// filesCompleteUploadExternal finishes uploads and, when a channel is given,
// shares them in a message from the bot (in the thread of thread_ts), which is
// echoed to the app like any other. Without a channel the files stay private.
func (s *Server) filesCompleteUploadExternal(p params) result {
	var list []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if json.Unmarshal([]byte(p["files"]), &list) != nil || len(list) == 0 {
		return fail("invalid_arguments")
	}
	channelID := p["channel_id"]
	if channelID == "" && p["channels"] != "" {
		channelID, _, _ = strings.Cut(p["channels"], ",")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range list {
		if up := s.uploads[f.ID]; up == nil || !up.uploaded {
			return fail("file_not_found")
		}
	}
	var ch *channel
	var threadTS string
	if channelID != "" {
		if ch = s.channelLocked(channelID); ch == nil {
			return fail("channel_not_found")
		}
		if t := p["thread_ts"]; t != "" {
			root, found := threadRoot(ch, t)
			if !found {
				return fail("invalid_thread_ts")
			}
			threadTS = root
		}
	}
	var files []File
	var answer []map[string]any
	for _, f := range list {
		up := s.uploads[f.ID]
		delete(s.uploads, f.ID)
		file := s.addFileLocked(File{ID: up.id, Name: up.name, Content: up.content}, s.BotUserID, f.Title)
		files = append(files, file)
		answer = append(answer, s.fileJSONLocked(file.ID))
	}
	if ch != nil {
		m := &stored{
			Message: Message{
				Channel:  ch.info.ID,
				ThreadTS: threadTS,
				User:     s.BotUserID,
				BotID:    s.BotID,
				AppID:    s.AppID,
				Text:     p["initial_comment"],
				Subtype:  "file_share",
				Files:    files,
			},
			upload: true,
		}
		if blocks, good := jsonArg(p, "blocks"); good {
			m.blocks = blocks
		}
		m.TS = s.nextTSLocked()
		s.storeLocked(ch, m)
		m.EventID = s.emitLocked(ch, s.messageEvent(ch, m), 1)
		s.notifyLocked(m.snapshot())
	}
	s.changedLocked()
	return ok(map[string]any{"files": answer})
}

// handleFilePrivate serves url_private (/files-pri/TEAM-FID/NAME) and
// url_private_download (/files-pri/TEAM-FID/download/NAME). Like Slack, it
// wants the bot token in an Authorization header; without it (or with a wrong
// one) it redirects to a sign-in page that answers 200 with HTML, the classic
// surprise of downloading Slack files without auth. Unknown files are 404.
func (s *Server) handleFilePrivate(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/files-pri/")
	key, name, _ := strings.Cut(rest, "/")
	download := false
	if after, found := strings.CutPrefix(name, "download/"); found {
		name, download = after, true
	}
	if r.Header.Get("Authorization") != "Bearer "+s.BotToken {
		http.Redirect(w, r, s.URL+"/signin?redir="+url.QueryEscape(r.URL.Path), http.StatusFound)
		return
	}
	id, found := strings.CutPrefix(key, s.TeamID+"-")
	s.mu.Lock()
	e := s.files[id]
	var f File
	if e != nil {
		f = e.File
	}
	s.mu.Unlock()
	if !found || e == nil || f.Name != name {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", f.Mimetype)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Content)))
	if download {
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
	}
	if r.Method != http.MethodHead {
		_, _ = w.Write(f.Content)
	}
}

// handleSignin is the page unauthenticated file requests land on.
func (s *Server) handleSignin(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!DOCTYPE html><html><head><title>Sign in | Slack</title></head><body>Sign in to "+teamName+"</body></html>")
}
