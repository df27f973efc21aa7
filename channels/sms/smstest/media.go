package smstest

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// cdnPrefix is the path of the one-time URLs a media URL redirects to with
// Config.MediaRedirect, standing in for Twilio's media CDN.
const cdnPrefix = "/cdn/media/"

// Media is one file of an inbound MMS.
type Media struct {
	ContentType string
	Data        []byte
}

// MediaFetch is one request for an inbound media file, as the fake saw it.
type MediaFetch struct {
	MessageSID, MediaSID string
	// Path is the request's path: the media URL's, or a CDN URL's when CDN is set.
	Path string
	CDN  bool
	// Credentials says whether the request carried HTTP basic auth at all,
	// Authorized whether it was the account SID and auth token.
	Credentials, Authorized bool
	// Status is the HTTP status of the answer: 200, 307 (MediaRedirect), 401, 404.
	Status     int
	RemoteAddr string
	UserAgent  string
	Time       time.Time
}

// storedMedia is one inbound media file the fake serves.
type storedMedia struct {
	sid, messageSID, contentType string
	data                         []byte
	created                      time.Time
}

// mediaDoc is Twilio's JSON for a Media resource.
type mediaDoc struct {
	AccountSID  string `json:"account_sid"`
	ContentType string `json:"content_type"`
	DateCreated string `json:"date_created"`
	DateUpdated string `json:"date_updated"`
	ParentSID   string `json:"parent_sid"`
	SID         string `json:"sid"`
	URI         string `json:"uri"`
}

// mediaPageDoc is Twilio's JSON for the list of a message's media.
type mediaPageDoc struct {
	End             int        `json:"end"`
	FirstPageURI    string     `json:"first_page_uri"`
	MediaList       []mediaDoc `json:"media_list"`
	NextPageURI     *string    `json:"next_page_uri"`
	Page            int        `json:"page"`
	PageSize        int        `json:"page_size"`
	PreviousPageURI *string    `json:"previous_page_uri"`
	Start           int        `json:"start"`
	URI             string     `json:"uri"`
}

// mediaPath is the path of the media file sid of the message msg, without ".json";
// the media URL Twilio hands out is its API host followed by it.
func (s *Server) mediaPath(msg, sid string) string {
	return fmt.Sprintf("/%s/Accounts/%s/Messages/%s/Media/%s", apiVersion, s.cfg.AccountSID, msg, sid)
}

// storeMediaLocked keeps media as the files of the inbound message m and sets its
// media URLs. The caller holds s.mu.
func (s *Server) storeMediaLocked(m *message, media []Media) {
	for _, f := range media {
		sm := &storedMedia{
			sid: newSID("ME"), messageSID: m.sid, contentType: f.ContentType,
			data: slices.Clone(f.Data), created: m.created,
		}
		s.media[sm.sid] = sm
		m.mediaSIDs = append(m.mediaSIDs, sm.sid)
		m.media = append(m.media, s.url+s.mediaPath(m.sid, sm.sid))
	}
}

// MediaFetches returns every request for an inbound media file so far, in order.
func (s *Server) MediaFetches() []MediaFetch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.fetches)
}

// serveMedia serves GET Messages/{MessageSid}/Media/{MediaSid}: with ".json" the
// Media resource (an API call), without it the file itself, which needs the
// account's credentials unless Config.PublicMedia is set. Every request for a file
// is recorded.
func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request) {
	if sid, ok := strings.CutSuffix(r.PathValue("file"), ".json"); ok {
		s.api(func(r *http.Request) (int, any) { return s.fetchMedia(r, sid) }).ServeHTTP(w, r)
		return
	}
	if !s.goTrack() {
		http.Error(w, "smstest: server closed", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	_, _, hasAuth := r.BasicAuth()
	authorized := s.authenticated(r)
	s.mu.Lock()
	sm := s.media[r.PathValue("file")]
	s.mu.Unlock()
	fetch := MediaFetch{
		MessageSID: r.PathValue("message"), MediaSID: r.PathValue("file"), Path: r.URL.Path,
		Credentials: hasAuth, Authorized: authorized,
		RemoteAddr: r.RemoteAddr, UserAgent: r.UserAgent(), Time: time.Now().UTC(),
	}
	switch {
	case !authorized && !s.cfg.PublicMedia:
		fetch.Status = http.StatusUnauthorized
		writeJSON(w, fetch.Status, errAuthenticate())
	case sm == nil || sm.messageSID != fetch.MessageSID || r.PathValue("account") != s.cfg.AccountSID:
		fetch.Status = http.StatusNotFound
		writeJSON(w, fetch.Status, errNotFound(r.URL.Path))
	case s.cfg.MediaRedirect:
		fetch.Status = http.StatusTemporaryRedirect
		token := newSID("")
		s.mu.Lock()
		s.cdn[token] = sm
		s.mu.Unlock()
		http.Redirect(w, r, s.url+cdnPrefix+token, fetch.Status)
	default:
		fetch.Status = http.StatusOK
		writeMedia(w, sm)
	}
	s.recordFetch(fetch)
}

// serveCDN serves a redirect target of MediaRedirect once, without credentials,
// like a pre-signed CDN URL; a second request answers 404 (the fake's choice:
// Twilio's CDN URLs expire after a while instead).
func (s *Server) serveCDN(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	s.mu.Lock()
	sm := s.cdn[token]
	delete(s.cdn, token)
	s.mu.Unlock()
	_, _, hasAuth := r.BasicAuth()
	fetch := MediaFetch{
		Path: r.URL.Path, CDN: true, Credentials: hasAuth, Status: http.StatusNotFound,
		RemoteAddr: r.RemoteAddr, UserAgent: r.UserAgent(), Time: time.Now().UTC(),
	}
	if sm == nil {
		http.NotFound(w, r)
	} else {
		fetch.MessageSID, fetch.MediaSID, fetch.Status = sm.messageSID, sm.sid, http.StatusOK
		writeMedia(w, sm)
	}
	s.recordFetch(fetch)
}

func writeMedia(w http.ResponseWriter, sm *storedMedia) {
	w.Header().Set("Content-Type", sm.contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(sm.data)))
	w.WriteHeader(http.StatusOK)
	w.Write(sm.data)
}

func (s *Server) recordFetch(f MediaFetch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetches = append(s.fetches, f)
}

// fetchMedia serves GET Messages/{MessageSid}/Media/{MediaSid}.json.
func (s *Server) fetchMedia(r *http.Request, sid string) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sm := s.media[sid]
	if sm == nil || sm.messageSID != r.PathValue("message") {
		return http.StatusNotFound, errNotFound(r.URL.Path)
	}
	return http.StatusOK, s.mediaDocLocked(sm)
}

// listMedia serves GET Messages/{MessageSid}/Media.json: the message's media in one
// page (a message has at most ten).
func (s *Server) listMedia(r *http.Request) (int, any) {
	msg := r.PathValue("message")
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.bySID[msg]
	if m == nil {
		return http.StatusNotFound, errNotFound(r.URL.Path)
	}
	uri := fmt.Sprintf("/%s/Accounts/%s/Messages/%s/Media.json?PageSize=50&Page=0", apiVersion, s.cfg.AccountSID, msg)
	p := mediaPageDoc{MediaList: []mediaDoc{}, PageSize: 50, FirstPageURI: uri, URI: uri, End: len(m.mediaSIDs) - 1}
	for _, sid := range m.mediaSIDs {
		p.MediaList = append(p.MediaList, s.mediaDocLocked(s.media[sid]))
	}
	return http.StatusOK, p
}

func (s *Server) mediaDocLocked(sm *storedMedia) mediaDoc {
	date := sm.created.Format(twilioTime)
	return mediaDoc{
		AccountSID: s.cfg.AccountSID, ContentType: sm.contentType, DateCreated: date, DateUpdated: date,
		ParentSID: sm.messageSID, SID: sm.sid, URI: s.mediaPath(sm.messageSID, sm.sid) + ".json",
	}
}
