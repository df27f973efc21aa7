package smstest

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

const (
	// twilioTime is the layout of Twilio's date fields: "Mon, 16 Aug 2010 03:45:01 +0000".
	twilioTime      = "Mon, 02 Jan 2006 15:04:05 -0700"
	defaultPageSize = 50
	maxPageSize     = 1000
)

// messageDoc is Twilio's JSON for a Message resource.
type messageDoc struct {
	AccountSID          string            `json:"account_sid"`
	APIVersion          string            `json:"api_version"`
	Body                string            `json:"body"`
	DateCreated         string            `json:"date_created"`
	DateSent            *string           `json:"date_sent"`
	DateUpdated         string            `json:"date_updated"`
	Direction           string            `json:"direction"`
	ErrorCode           *int              `json:"error_code"`
	ErrorMessage        *string           `json:"error_message"`
	From                *string           `json:"from"`
	MessagingServiceSID *string           `json:"messaging_service_sid"`
	NumMedia            string            `json:"num_media"`
	NumSegments         string            `json:"num_segments"`
	Price               *string           `json:"price"`
	PriceUnit           string            `json:"price_unit"`
	SID                 string            `json:"sid"`
	Status              string            `json:"status"`
	SubresourceURIs     map[string]string `json:"subresource_uris"`
	To                  string            `json:"to"`
	URI                 string            `json:"uri"`
}

// pageDoc is Twilio's JSON for a page of Message resources.
type pageDoc struct {
	End             int          `json:"end"`
	FirstPageURI    string       `json:"first_page_uri"`
	Messages        []messageDoc `json:"messages"`
	NextPageURI     *string      `json:"next_page_uri"`
	Page            int          `json:"page"`
	PageSize        int          `json:"page_size"`
	PreviousPageURI *string      `json:"previous_page_uri"`
	Start           int          `json:"start"`
	URI             string       `json:"uri"`
}

// docLocked renders m. The caller holds s.mu.
func (s *Server) docLocked(m *message) messageDoc {
	uri := fmt.Sprintf("/2010-04-01/Accounts/%s/Messages/%s", s.cfg.AccountSID, m.sid)
	d := messageDoc{
		AccountSID: s.cfg.AccountSID, APIVersion: apiVersion, Body: m.body,
		DateCreated: m.created.Format(twilioTime), DateUpdated: m.updated.Format(twilioTime),
		Direction: m.direction, From: optional(m.from), MessagingServiceSID: optional(m.msid),
		NumMedia: strconv.Itoa(len(m.media)), NumSegments: strconv.Itoa(segments(m.body)),
		PriceUnit: "USD", SID: m.sid, Status: m.status, To: m.to, URI: uri + ".json",
		SubresourceURIs: map[string]string{
			"media":    uri + "/Media.json",
			"feedback": uri + "/Feedback.json",
		},
	}
	if !m.sent.IsZero() {
		d.DateSent = optional(m.sent.Format(twilioTime))
	}
	if m.errorCode != 0 {
		d.ErrorCode = &m.errorCode
	}
	return d
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// filter is a list call's query: To, From, DateSent, DateSent< and DateSent>. The
// date bounds are inclusive; a date without a time covers the whole UTC day.
type filter struct {
	to, from   string
	after      time.Time // zero: unbounded
	before     time.Time // zero: unbounded
	dateFilter bool
}

func parseFilter(q url.Values) (filter, error) {
	f := filter{to: q.Get("To"), from: q.Get("From")}
	for _, key := range []string{"DateSent", "DateSent>", "DateSent<"} {
		v := q.Get(key)
		if v == "" {
			continue
		}
		start, end, err := parseDate(v)
		if err != nil {
			return f, fmt.Errorf("Invalid %s: %s", key, v)
		}
		f.dateFilter = true
		if key != "DateSent<" {
			f.after = start
		}
		if key != "DateSent>" {
			f.before = end
		}
	}
	return f, nil
}

// parseDate parses a Twilio date filter value into the first and last second it covers.
func parseDate(v string) (start, end time.Time, err error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		t = t.UTC().Truncate(time.Second)
		return t, t, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return t, t, err
	}
	return t, t.Add(24*time.Hour - time.Second), nil
}

// match reports whether m passes f. A date filter applies to date_sent, so it never
// matches a message that is not sent yet (queued or accepted), as at Twilio.
func (f filter) match(m *message) bool {
	if f.to != "" && f.to != m.to || f.from != "" && f.from != m.from {
		return false
	}
	if !f.dateFilter {
		return true
	}
	if m.sent.IsZero() {
		return false
	}
	sent := m.sent.Truncate(time.Second)
	return (f.after.IsZero() || !sent.Before(f.after)) && (f.before.IsZero() || !sent.After(f.before))
}

// list serves GET Messages.json: matching messages, inbound and outbound, newest first,
// in pages of PageSize (default 50) chosen with Page (from 0).
func (s *Server) list(r *http.Request) (int, any) {
	q := r.URL.Query()
	f, err := parseFilter(q)
	if err != nil {
		return http.StatusBadRequest, errBadRequest(codeInvalidParameter, err.Error())
	}
	size, err1 := intParam(q, "PageSize", defaultPageSize)
	page, err2 := intParam(q, "Page", 0)
	if err1 != nil || err2 != nil || size < 1 || size > maxPageSize || page < 0 {
		return http.StatusBadRequest, errBadRequest(codeInvalidParameter, "Invalid PageSize or Page")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var docs []messageDoc
	for i := len(s.msgs) - 1; i >= 0; i-- {
		if f.match(s.msgs[i]) {
			docs = append(docs, s.docLocked(s.msgs[i]))
		}
	}
	return http.StatusOK, s.page(q, docs, page, size)
}

func intParam(q url.Values, key string, def int) (int, error) {
	v := q.Get(key)
	if v == "" {
		return def, nil
	}
	return strconv.Atoi(v)
}

// page cuts page number page of size out of all and describes it like Twilio.
func (s *Server) page(q url.Values, all []messageDoc, page, size int) pageDoc {
	start := min(page*size, len(all))
	end := min(start+size, len(all))
	p := pageDoc{
		Messages: append([]messageDoc{}, all[start:end]...),
		Page:     page, PageSize: size, Start: start, End: end - 1,
		FirstPageURI: s.pageURI(q, size, 0),
		URI:          s.pageURI(q, size, page),
	}
	if end < len(all) {
		p.NextPageURI = optional(s.pageURI(q, size, page+1))
	}
	if page > 0 {
		p.PreviousPageURI = optional(s.pageURI(q, size, page-1))
	}
	return p
}

func (s *Server) pageURI(q url.Values, size, page int) string {
	v := url.Values{}
	for _, key := range []string{"To", "From", "DateSent", "DateSent<", "DateSent>"} {
		if q.Has(key) {
			v.Set(key, q.Get(key))
		}
	}
	v.Set("PageSize", strconv.Itoa(size))
	v.Set("Page", strconv.Itoa(page))
	return fmt.Sprintf("/2010-04-01/Accounts/%s/Messages.json?%s", s.cfg.AccountSID, v.Encode())
}
