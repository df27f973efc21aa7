package cention

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/connectord/connectord/connector"
)

// maxAnswer bounds an HTTP answer read from Cention.
const maxAnswer = 1 << 20

// httpError is a non-2xx answer.
type httpError struct {
	Call   string
	Status int
	After  time.Duration // Retry-After, when given
}

func (e *httpError) Error() string { return fmt.Sprintf("cention %s: HTTP %d", e.Call, e.Status) }

// call performs one HTTP request within request_timeout and returns the
// answer's body (at most maxAnswer bytes). A 429 or 503 with Retry-After is
// a connector.RetryAfter error; another 4xx but 408 and 429 is Permanent.
func (v *Vendor) call(ctx context.Context, name string, req *http.Request) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.RequestTimeout)
	defer cancel()
	req = req.WithContext(ctx)
	req.Header.Set("Origin", v.cfg.Origin)
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "application/json")
	resp, err := v.client.Do(req)
	if err != nil {
		return nil, connector.Redacted(fmt.Errorf("cention %s: %w", name, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("cention %s: read answer: %w", name, err)
	}
	if resp.StatusCode/100 != 2 {
		he := &httpError{Call: name, Status: resp.StatusCode}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			he.After = min(time.Duration(s)*time.Second, 10*time.Minute)
		}
		switch {
		case he.After > 0:
			return nil, connector.RetryAfter(he, he.After)
		case resp.StatusCode == http.StatusForbidden:
			return nil, fmt.Errorf("%w (is origin %q registered with Cention?)", he, v.cfg.Origin)
		case resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
			return nil, connector.Permanent(he)
		}
		return nil, he
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("cention %s: answer over %d bytes", name, maxAnswer)
	}
	return body, nil
}

// canChat asks whether a chat can start in the configured area. When the
// answer does not say how many agents are available, agentlist is asked.
func (v *Vendor) canChat(ctx context.Context) (canChat, error) {
	q := url.Values{"area": {strconv.Itoa(v.cfg.Area)}}
	req, err := http.NewRequest(http.MethodGet, v.cfg.apiURL("canchat", q), nil)
	if err != nil {
		return canChat{}, err
	}
	body, err := v.call(ctx, "canchat", req)
	if err != nil {
		return canChat{}, err
	}
	cc, err := decodeCanChat(body)
	if err != nil || cc.AgentsAvailable != nil || cc.Error != "" || !cc.ChatOpen {
		return cc, err
	}
	n, err := v.agentList(ctx)
	if err != nil {
		return cc, nil // canchat said open; the register will tell
	}
	cc.AgentsAvailable = &n
	return cc, nil
}

// agentList counts the active agents of the area.
func (v *Vendor) agentList(ctx context.Context) (int, error) {
	q := url.Values{"areas": {strconv.Itoa(v.cfg.Area)}, "who": {"active"}}
	req, err := http.NewRequest(http.MethodGet, v.cfg.apiURL("agentlist", q), nil)
	if err != nil {
		return 0, err
	}
	body, err := v.call(ctx, "agentlist", req)
	if err != nil {
		return 0, err
	}
	return decodeAgentList(body)
}

// errNotUploaded marks a customer file that cannot be uploaded (too big,
// not fetchable): it is sent as its link instead.
var errNotUploaded = errors.New("file not uploaded")

// upload fetches a customer's file and posts it to the chat's upload call,
// as the SDK does: multipart with uploadfile, session, area, sessionSecret
// and random.
func (v *Vendor) upload(ctx context.Context, st sessionState, a connector.Attachment) (uploaded, error) {
	data, name, ctype, err := v.fetch(ctx, a)
	if err != nil {
		return uploaded{}, err
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{fmt.Sprintf(`form-data; name="uploadfile"; filename=%q`, name)}
	h["Content-Type"] = []string{ctype}
	part, err := w.CreatePart(h)
	if err != nil {
		return uploaded{}, err
	}
	if _, err := part.Write(data); err != nil {
		return uploaded{}, err
	}
	for k, val := range map[string]string{"session": st.SessionID, "area": strconv.Itoa(v.cfg.Area),
		"sessionSecret": st.Secret, "random": strconv.Itoa(mrand.IntN(1000))} {
		if err := w.WriteField(k, val); err != nil {
			return uploaded{}, err
		}
	}
	if err := w.Close(); err != nil {
		return uploaded{}, err
	}
	req, err := http.NewRequest(http.MethodPost, v.cfg.uploadURL(), &body)
	if err != nil {
		return uploaded{}, err
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	answer, err := v.call(ctx, "upload", req)
	if connector.IsPermanent(err) { // refused (too big, a type it does not take): the link goes instead
		return uploaded{}, fmt.Errorf("%w: %v", errNotUploaded, err)
	}
	if err != nil {
		return uploaded{}, err
	}
	up, err := decodeUpload(answer)
	if err != nil {
		return uploaded{}, fmt.Errorf("%w: %v", errNotUploaded, err)
	}
	if up.Name == "" {
		up.Name = name
	}
	return up, nil
}

// fetch downloads a customer's file, at most max_attachment_size bytes,
// through a client that refuses internal addresses.
func (v *Vendor) fetch(ctx context.Context, a connector.Attachment) ([]byte, string, string, error) {
	limit := v.cfg.MaxAttachmentSize
	if limit <= 0 || a.Size > limit {
		return nil, "", "", fmt.Errorf("%w: %d bytes, max_attachment_size %d", errNotUploaded, a.Size, limit)
	}
	ctx, cancel := context.WithTimeout(ctx, v.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w: %v", errNotUploaded, err)
	}
	resp, err := v.fetchClient.Do(req)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w: %v", errNotUploaded, connector.RedactError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		connector.DrainClose(resp.Body) // an error page: keep the connection
		return nil, "", "", fmt.Errorf("%w: fetch answered HTTP %d", errNotUploaded, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", "", fmt.Errorf("fetch customer file: %w", err) // a retry may do better
	}
	if int64(len(data)) > limit {
		return nil, "", "", fmt.Errorf("%w: over max_attachment_size %d", errNotUploaded, limit)
	}
	name := fileName(a, req.URL)
	ctype := a.ContentType
	if ctype == "" {
		ctype = resp.Header.Get("Content-Type")
	}
	if ctype == "" || strings.ContainsAny(ctype, "\r\n") {
		ctype = "application/octet-stream"
	}
	return data, name, ctype, nil
}

// fileName is the attachment's name, else the last element of its URL.
func fileName(a connector.Attachment, u *url.URL) string {
	name := strings.TrimSpace(a.Name)
	if name == "" {
		name = path.Base(u.Path)
	}
	name = strings.Map(func(r rune) rune {
		if r < ' ' || r == '"' || r == '\\' || r == '/' {
			return '_'
		}
		return r
	}, name)
	if name == "" || name == "." || name == "_" {
		name = "file"
	}
	return clip(name, maxFileName)
}

// fileURL makes a file notice's download link absolute: an absolute URL
// stays, a path under the workspace ("/s/<workspace>/...") is taken from the
// server's root, and another path is taken under base_url.
func (s *settings) fileURL(link string) string {
	u, err := url.Parse(link)
	if err != nil || link == "" {
		return ""
	}
	if u.IsAbs() {
		if u.Scheme != "https" && u.Scheme != "http" {
			return ""
		}
		return link
	}
	base := *s.base
	base.RawQuery = ""
	if strings.HasPrefix(u.Path, "/s/") || strings.HasPrefix(u.Path, s.base.Path+"/") {
		base.Path = ""
	}
	base.Path += "/" + strings.TrimLeft(u.Path, "/")
	base.RawQuery = u.RawQuery
	return base.String()
}
