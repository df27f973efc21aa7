package sms

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/medialink"
	"github.com/connectord/connectord/connector/netguard"
)

// MMS media both ways.
//
// Inbound: Twilio's media URLs need the account's credentials (HTTP basic
// auth), which must not leave connectord. The agent gets, for each file, a
// link to connectord instead (GET /sms/NAME/media/ID/NAME, sealed by
// medialink, good for media_link_ttl); opening it makes the channel fetch
// the file from Twilio with the credentials, following Twilio's redirect to
// its CDN without them, and stream it back (at most max_media_bytes).
//
// Outbound: an agent's attachment goes as a MediaUrl, which Twilio fetches
// itself. One whose URL needs credentials (user:password in it, or a file on
// Twilio's own API host) goes as a link to connectord, which fetches it.
// Twilio's limits are checked first where the attachment says enough: at
// most max_media files, of media_types, within max_media_bytes in all; a
// file that breaks one is left out and the customer reads
// media_refused_notice instead.

// maxMediaRedirects bounds the redirects one media fetch follows.
const maxMediaRedirects = 5

// mediaRoute is the pattern of the media links' handler under the
// channel's path.
const mediaRoute = "/media/{id}/{name}"

// newMediaClient fetches media. Authorization goes only with the first
// request (to Twilio's API host, or to the host whose URL carried
// credentials), never where a redirect leads: Twilio redirects a media URL
// to a pre-signed CDN URL that needs none, also on the same host.
func newMediaClient(cfg Config, t http.RoundTripper) *http.Client {
	limit := netguard.LimitRedirects(maxMediaRedirects)
	return &http.Client{Timeout: cfg.FetchTimeout, Transport: t, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		req.Header.Del("Authorization")
		return limit(req, via)
	}}
}

// onAPIHost reports whether u is on the scheme and host of api_url: a
// Twilio resource, fetched with the account's credentials.
func (c *Channel) onAPIHost(u *url.URL) bool {
	api, err := url.Parse(c.cfg.APIURL)
	return err == nil && u.Scheme == api.Scheme && strings.EqualFold(u.Host, api.Host)
}

// linkMedia replaces the Twilio URLs of an inbound message's attachments
// with links to connectord. Without a public URL there is nowhere to link
// to: the URLs stay (they need the credentials, so nothing leaks), logged.
func (c *Channel) linkMedia(sid string, atts []connector.Attachment) {
	if len(atts) == 0 {
		return
	}
	if c.publicURL == "" {
		c.log.Warn("inbound media kept as Twilio URLs: http.public_url is not set, so there is nowhere to link them",
			zap.String("message_sid", sid))
		return
	}
	now := time.Now()
	for i := range atts {
		id := mediaID(sid, i, atts[i].URL)
		name := id + extension(atts[i].ContentType)
		link, err := c.links.URL(c.publicURL+c.path+"/media", id, name, atts[i].URL, now)
		if err != nil {
			c.log.Warn("media link not made; Twilio URL kept", zap.String("message_sid", sid), zap.Error(err))
			continue
		}
		atts[i].URL, atts[i].Name = link, name
	}
}

// mediaID names a file in its link: Twilio's media SID (the URL's last
// segment) when it looks like one, else the message SID and index.
func mediaID(sid string, i int, u string) string {
	if p, err := url.Parse(u); err == nil {
		if base := path.Base(p.Path); strings.HasPrefix(base, "ME") && alnum(base) && len(base) <= maxSIDLen {
			return base
		}
	}
	return sid + "-" + strconv.Itoa(i)
}

// extension is a file name ending for the common MMS types, "" for others.
func extension(contentType string) string {
	switch strings.ToLower(strings.TrimSpace(strings.Split(contentType, ";")[0])) {
	case "image/jpeg":
		return ".jpg"
	case "image/png":
		return ".png"
	case "image/gif":
		return ".gif"
	case "image/webp":
		return ".webp"
	case "video/mp4":
		return ".mp4"
	case "video/3gpp":
		return ".3gp"
	case "audio/mpeg":
		return ".mp3"
	case "audio/amr":
		return ".amr"
	case "application/pdf":
		return ".pdf"
	case "text/vcard", "text/x-vcard":
		return ".vcf"
	case "text/plain":
		return ".txt"
	}
	return ""
}

// serveMedia answers a media link: the file, fetched now.
func (c *Channel) serveMedia(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("name")
	src, status := c.links.Check(id, name, r.URL.Query(), time.Now())
	if status != 0 {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.Error(w, http.StatusText(status), status)
		return
	}
	resp, err := c.fetchMedia(r.Context(), src)
	if err != nil {
		c.log.Warn("media fetch failed", zap.String("media", id), zap.Error(err))
		http.Error(w, "file not available", http.StatusBadGateway)
		return
	}
	if n, err := medialink.Serve(w, resp, name, c.cfg.MaxMediaBytes); err != nil {
		c.log.Warn("media download cut short; aborting the answer", zap.String("media", id),
			zap.Int64("bytes_sent", n), zap.Error(connector.Redacted(err)))
		panic(http.ErrAbortHandler) // the client must not take the part for the whole
	}
}

// fetchMedia GETs a file for a link: with the account's credentials on
// Twilio's API host, with the URL's own user:password where it has them
// (taken out of the URL), else plainly. A non-200 answer is an error.
// Error texts carry no URL query or credentials.
func (c *Channel) fetchMedia(ctx context.Context, src string) (*http.Response, error) {
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("media URL %s is not an absolute http(s) URL", connector.RedactURL(src))
	}
	user := u.User
	u.User = nil
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, connector.Redacted(fmt.Errorf("media URL: %w", err))
	}
	switch {
	case c.onAPIHost(u):
		req.SetBasicAuth(c.cfg.AccountSID, c.cfg.AuthToken.Reveal())
	case user != nil:
		pw, _ := user.Password()
		req.SetBasicAuth(user.Username(), pw)
	}
	req.Header.Set("User-Agent", "connectord")
	resp, err := c.media.Do(req)
	if err != nil {
		return nil, connector.Redacted(err)
	}
	if resp.StatusCode != http.StatusOK {
		connector.DrainClose(resp.Body)
		return nil, fmt.Errorf("GET %s: %s", connector.RedactURL(u.String()), resp.Status)
	}
	return resp, nil
}

// refusedMedia is an attachment left out of an outbound message, and why.
type refusedMedia struct {
	Name   string // the file's name, or its URL's last segment
	Reason string
}

// outboundMedia returns the MediaUrl values for an agent's attachments and
// the ones left out. A URL that needs credentials becomes a link to
// connectord (none without a public URL: left out).
func (c *Channel) outboundMedia(atts []connector.Attachment) (urls []string, refused []refusedMedia) {
	var total int64
	now := time.Now()
	for i, a := range atts {
		if a.URL == "" {
			continue
		}
		name := a.Name
		if name == "" {
			name = displayName(a.URL)
		}
		reason := ""
		switch {
		case len(urls) >= c.cfg.MaxMedia:
			reason = fmt.Sprintf("more than %d files in one message", c.cfg.MaxMedia)
		case a.ContentType != "" && !c.mediaTypeAllowed(a.ContentType):
			reason = "a file type MMS does not carry (" + clip(a.ContentType, 64) + ")"
		case a.Size > 0 && total+a.Size > c.cfg.MaxMediaBytes:
			reason = "larger than " + byteSize(c.cfg.MaxMediaBytes) + " in all"
		}
		var u string
		if reason == "" {
			var err error
			if u, err = c.mediaURLFor(a.URL, i, name, now); err != nil {
				reason = err.Error()
			}
		}
		if reason != "" {
			refused = append(refused, refusedMedia{Name: name, Reason: reason})
			continue
		}
		total += max(a.Size, 0)
		urls = append(urls, u)
	}
	return urls, refused
}

// mediaURLFor is the MediaUrl Twilio gets for an agent's file at raw.
func (c *Channel) mediaURLFor(raw string, i int, name string, now time.Time) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("not a web address Twilio can fetch")
	}
	if u.User == nil && !c.onAPIHost(u) {
		return raw, nil
	}
	if c.publicURL == "" {
		return "", errors.New("it needs credentials and connectord has no public URL to serve it from")
	}
	id := "out-" + strconv.Itoa(i)
	return c.links.URL(c.publicURL+c.path+"/media", id, safeName(name), raw, now)
}

// mediaTypeAllowed reports whether a content type is in media_types
// ("image/*" covers every image type).
func (c *Channel) mediaTypeAllowed(ct string) bool {
	t := strings.ToLower(strings.TrimSpace(strings.Split(ct, ";")[0]))
	for _, allowed := range c.cfg.MediaTypes {
		a := strings.ToLower(allowed)
		if a == t || strings.HasSuffix(a, "/*") && strings.HasPrefix(t, strings.TrimSuffix(a, "*")) {
			return true
		}
	}
	return false
}

// mediaNotice is the customer's line about files left out, "" for none.
func (c *Channel) mediaNotice(refused []refusedMedia) string {
	var lines []string
	for _, r := range refused {
		text, err := c.mediaRefused.Render(r)
		if err != nil {
			c.log.Warn("media notice not rendered", zap.Error(err))
			continue
		}
		if text != "" {
			lines = append(lines, text)
		}
	}
	return strings.Join(lines, "\n")
}

// displayName is a URL's last path segment, for a notice.
func displayName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || path.Base(u.Path) == "." || path.Base(u.Path) == "/" {
		return "a file"
	}
	return clip(path.Base(u.Path), 64)
}

// safeName keeps a link's name short and free of NUL and slashes.
func safeName(name string) string {
	name = strings.Map(func(r rune) rune {
		if r == 0 || r == '/' || r == '\\' {
			return '_'
		}
		return r
	}, name)
	if name == "" {
		return "file"
	}
	return clipRunes(name, 128)
}

// byteSize writes a byte count as Twilio's limits are stated: "5 MB".
func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
