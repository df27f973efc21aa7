package smstest

import (
	"context"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

const (
	// maxMediaBytes is Twilio's documented limit for the media of one MMS, all
	// files together.
	maxMediaBytes = 5 << 20
	// mediaFetchTimeout bounds one download; Twilio does not document its own.
	mediaFetchTimeout = 10 * time.Second
)

// MediaResult is what the fake got when it downloaded one outbound MediaUrl.
type MediaResult struct {
	URL string
	// Status is the HTTP status of the final answer (after redirects), 0 when there
	// was none; Err is then the transport error.
	Status      int
	Err         string
	ContentType string
	// Size is the number of bytes read, at most 5 MB + 1: the download stops once
	// the media are too large.
	Size int64
	// ErrorCode is the Twilio error this file failed the message with, 0 if none.
	ErrorCode int
}

// MediaFetched returns the downloads of the MediaUrl values of the outbound message
// sid, in order, once the fake made them (Config.FetchMedia); nil before.
func (s *Server) MediaFetched(sid string) []MediaResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.outFetches[sid])
}

// validMediaURLs reports whether every MediaUrl is an absolute http or https URL
// with a host, which is what Twilio's error 21620 asks for.
func validMediaURLs(urls []string) bool {
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return false
		}
	}
	return true
}

// acceptedType reports whether Twilio sends media of the Content-Type header value
// ct by MMS. Twilio's list of accepted types is long; the fake accepts images,
// audio and video of any subtype and the documents of that list that matter for
// chat (text/plain, text/vcard, text/x-vcard, text/calendar, text/csv,
// application/pdf), and refuses everything else, such as text/html or
// application/octet-stream, and a missing or malformed header.
func acceptedType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	major, _, _ := strings.Cut(mt, "/")
	switch major {
	case "image", "audio", "video":
		return true
	}
	switch mt {
	case "text/plain", "text/vcard", "text/x-vcard", "text/calendar", "text/csv", "application/pdf":
		return true
	}
	return false
}

// fetchOutboundMedia downloads each MediaUrl of m once, as Twilio does before it
// sends an MMS, records what it got, and returns the error code m fails with: 11200
// when a file cannot be retrieved (no answer or not 2xx), 12300 when its
// Content-Type is not accepted, 11751 when the files add up to more than 5 MB; 0
// when all is well. Twilio also sends HEAD requests; the fake makes one GET.
func (s *Server) fetchOutboundMedia(m *message) int {
	var results []MediaResult
	var total int64
	code := 0
	for _, u := range m.media {
		r := s.fetchOne(u, maxMediaBytes+1-total)
		total += r.Size
		switch {
		case r.Err != "" || r.Status < 200 || r.Status > 299:
			r.ErrorCode = codeMediaRetrieval
		case !acceptedType(r.ContentType):
			r.ErrorCode = codeMediaType
		case total > maxMediaBytes:
			r.ErrorCode = codeMediaTooLarge
		}
		if code == 0 {
			code = r.ErrorCode
		}
		results = append(results, r)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outFetches[m.sid] = results
	return code
}

// fetchOne downloads u, reading at most limit bytes of its body.
func (s *Server) fetchOne(u string, limit int64) MediaResult {
	r := MediaResult{URL: u}
	ctx, cancel := context.WithTimeout(s.ctx, mediaFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	resp, err := s.client.Do(req)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer resp.Body.Close()
	r.Status, r.ContentType = resp.StatusCode, resp.Header.Get("Content-Type")
	r.Size, err = io.Copy(io.Discard, io.LimitReader(resp.Body, max(limit, 1)))
	if err != nil {
		r.Err = err.Error()
	}
	return r
}
