package centiontest

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Paths under the base URL of the upload call (as Cention's mobile SDK
// posts it) and of the fake's downloads of what was uploaded.
const (
	uploadPath   = "/Cention/web/chat/client/uploadAttachment"
	downloadPath = "/Cention/web/chat/client/attachment/"
)

// Upload is one file posted to the upload call.
type Upload struct {
	ID          int64
	Token       string // of the chat its sessionSecret names
	SessionID   int64
	Session     string // the "session" form field
	Area        int    // the "area" form field
	Name        string
	ContentType string
	Data        []byte
}

type upload struct {
	Upload
	secret string
}

// Uploads returns every accepted upload, in order.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Upload, len(s.uploads))
	for i, u := range s.uploads {
		out[i] = u.Upload
		out[i].Data = slices.Clone(u.Data)
	}
	return out
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v) // the client may be gone; nothing to do about it
}

// canChatAnswer is the canchat call's answer, as the document lists it.
type canChatAnswer struct {
	ChatOpen        bool           `json:"chatOpen"`
	AgentsAvailable int            `json:"agentsAvailable"`
	Feature         map[string]any `json:"feature"`
	Resumable       bool           `json:"resumable"`
	Error           string         `json:"error,omitempty"`
}

// serveCanChat answers GET <base>/socket/external.api/canchat?area=N.
func (s *Server) serveCanChat(w http.ResponseWriter, r *http.Request) {
	if area, _ := strconv.Atoi(r.URL.Query().Get("area")); area != s.cfg.Area {
		writeJSON(w, http.StatusOK, canChatAnswer{Error: errInvalidArea})
		return
	}
	s.mu.Lock()
	a := canChatAnswer{ChatOpen: s.canChat, Feature: map[string]any{
		"chat.attachment":           true,
		"chat.max-attachment-size":  s.cfg.MaxUpload,
		"chat.max-image-size":       s.cfg.MaxUpload,
		"chat.external-source-page": false,
	}}
	if s.canChat {
		a.AgentsAvailable = len(s.agents)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, a)
}

type agentEntry struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// serveAgentList answers GET <base>/socket/external.api/agentlist?areas=N&who=active.
func (s *Server) serveAgentList(w http.ResponseWriter, r *http.Request) {
	list := []agentEntry{}
	if areasInclude(r.URL.Query().Get("areas"), s.cfg.Area) {
		s.mu.Lock()
		for i, n := range s.agents {
			list = append(list, agentEntry{ID: i + 1, Name: n})
		}
		s.mu.Unlock()
	}
	writeJSON(w, http.StatusOK, struct {
		Agents []agentEntry `json:"agents"`
	}{list})
}

// areasInclude reports whether a comma-separated area list names area.
func areasInclude(list string, area int) bool {
	for f := range strings.SplitSeq(list, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n == area {
			return true
		}
	}
	return false
}

// chatBySecretLocked finds the chat a session secret names.
func (s *Server) chatBySecretLocked(secret string) *chat {
	if secret == "" {
		return nil
	}
	for _, ch := range s.chats {
		if ch.secret == secret {
			return ch
		}
	}
	return nil
}

// serveHistory answers savehistory and printhistory (?area=&secret=): the
// chat's visible messages as a small HTML page. No Origin check: the
// document opens these as pages, the secret is the credential.
func (s *Server) serveHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	ch := s.chatBySecretLocked(q.Get("secret"))
	var b strings.Builder
	if ch != nil {
		b.WriteString("<html><body>\n")
		for _, m := range ch.msgs {
			if !m.visible {
				continue
			}
			who := ch.reg.Name
			switch m.sender {
			case SenderAgent:
				who = m.agent
			case SenderSystem:
				who = "System"
			}
			fmt.Fprintf(&b, "<p><span>%s</span> <b>%s</b>: %s</p>\n",
				human(m.sent), html.EscapeString(who), m.text) // agent HTML stays HTML
		}
		b.WriteString("</body></html>\n")
	}
	s.mu.Unlock()
	if ch == nil || q.Get("area") != strconv.Itoa(s.cfg.Area) {
		http.Error(w, "no session", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, b.String())
}

// uploadAnswer is the upload call's answer; a client puts it in add
// attachment's data.file and builds the file notice from it.
type uploadAnswer struct {
	ID        int64  `json:"id"`
	Value     string `json:"value"`    // the file name
	Download  string `json:"download"` // path under the base URL; add ?t=<sessionSecret>
	SizeHuman string `json:"sizeHuman"`
	Size      int64  `json:"size"`
	Error     string `json:"error,omitempty"`
}

// serveUpload answers the multipart upload: fields uploadfile (the file),
// session, area, sessionSecret, random.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUpload+64<<10)
	f, hdr, err := r.FormFile("uploadfile")
	if err != nil {
		code := http.StatusBadRequest
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			code = http.StatusRequestEntityTooLarge
		}
		writeJSON(w, code, uploadAnswer{Error: err.Error()})
		return
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, s.cfg.MaxUpload+1))
	if err != nil || int64(len(data)) > s.cfg.MaxUpload {
		writeJSON(w, http.StatusRequestEntityTooLarge, uploadAnswer{Error: "file too large"})
		return
	}
	area, _ := strconv.Atoi(r.FormValue("area"))
	s.mu.Lock()
	ch := s.chatBySecretLocked(r.FormValue("sessionSecret"))
	if ch == nil || !ch.live() {
		s.mu.Unlock()
		writeJSON(w, http.StatusForbidden, uploadAnswer{Error: errNoSession})
		return
	}
	s.nextMsgID++
	u := &upload{secret: ch.secret, Upload: Upload{ID: s.nextMsgID, Token: ch.token, SessionID: ch.sessionID,
		Session: r.FormValue("session"), Area: area, Name: hdr.Filename,
		ContentType: hdr.Header.Get("Content-Type"), Data: data}}
	s.uploads = append(s.uploads, u)
	s.changedLocked()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, uploadAnswer{ID: u.ID, Value: u.Name,
		Download: downloadPath + strconv.FormatInt(u.ID, 10), SizeHuman: sizeHuman(int64(len(data))),
		Size: int64(len(data))})
}

// serveDownload serves an uploaded file to whoever has its chat's secret
// (?t=<sessionSecret>, as the SDK appends it).
func (s *Server) serveDownload(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	t := r.URL.Query().Get("t")
	s.mu.Lock()
	var found *upload
	for _, u := range s.uploads {
		if u.ID == id && u.secret == t {
			found = u
		}
	}
	s.mu.Unlock()
	if found == nil {
		http.NotFound(w, r)
		return
	}
	ct := found.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Write(found.Data)
}

// queryEscape escapes a token for the socket URL's query, as JavaScript's
// encodeURIComponent does for the characters tokens carry.
func queryEscape(s string) string { return url.QueryEscape(s) }
