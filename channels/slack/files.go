package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"time"

	"github.com/slack-go/slack"
	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/netguard"
)

// maxRedirects bounds the redirects one file download follows.
const maxRedirects = 5

// newSlackFileClient fetches customers' files from Slack with the bot token
// on t (the Web API's transport). A redirect off the token hosts loses the
// Authorization header, whatever Go's own rule (which keeps it for
// subdomains) would do.
func newSlackFileClient(cfg *Config, t http.RoundTripper) *http.Client {
	limit := netguard.LimitRedirects(maxRedirects)
	return &http.Client{Timeout: cfg.FetchTimeout, Transport: t, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !cfg.tokenURL(req.URL.String()) {
			req.Header.Del("Authorization")
		}
		return limit(req, via)
	}}
}

// linkTarget checks a file link's request and returns the Slack URL it
// stands for, or the HTTP status to refuse it with.
func (c *Channel) linkTarget(r *http.Request) (string, int) {
	src, status := c.links.check(r.PathValue("id"), r.PathValue("name"), r.URL.Query(), time.Now())
	if status != 0 {
		return "", status
	}
	if !c.cfg.tokenURL(src) {
		// Signed before file_hosts changed, or by an older version that
		// proxied external files: never send the token there.
		return "", http.StatusForbidden
	}
	return src, 0
}

// serveFile streams a customer's file to whoever holds a good link. The
// answer is a download that cannot run on connectord's origin (attachment,
// nosniff, a sandboxing CSP); a download cut short is aborted, so that the
// client sees an error instead of a shorter file.
func (c *Channel) serveFile(w http.ResponseWriter, r *http.Request) {
	defer c.recoverHTTP(w, "file link")
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	id, name := r.PathValue("id"), r.PathValue("name")
	src, status := c.linkTarget(r)
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	resp, err := c.fetch(r.Context(), c.slackFiles, src, true)
	if err != nil {
		c.log.Warn("file fetch from Slack failed", zap.String("file", id), zap.Error(err))
		http.Error(w, "file not available from Slack", http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if resp.ContentLength > c.cfg.MaxFileBytes {
		http.Error(w, "file too large", http.StatusRequestEntityTooLarge)
		return
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		h.Set("Content-Type", ct)
	} else {
		h.Set("Content-Type", "application/octet-stream")
	}
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	n, err := io.Copy(w, io.LimitReader(resp.Body, c.cfg.MaxFileBytes+1))
	if err == nil && n > c.cfg.MaxFileBytes {
		err = fmt.Errorf("larger than max_file_bytes (%d)", c.cfg.MaxFileBytes)
	}
	if err != nil {
		c.log.Warn("file download from Slack cut short; aborting the answer",
			zap.String("file", id), zap.Int64("bytes_sent", n), zap.Error(connector.Redacted(err)))
		panic(http.ErrAbortHandler) // the client must not take the part for the whole
	}
}

// fetch GETs a file with client; withToken adds the bot token, which only
// Slack's own hosts (file_hosts, api_url) ever get. A non-200 answer is an
// error; so is a refused address or a URL that is not http(s), permanently.
// Error texts carry no URL query.
func (c *Channel) fetch(ctx context.Context, client *http.Client, src string, withToken bool) (*http.Response, error) {
	u, err := url.Parse(src)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, connector.Permanent(fmt.Errorf("file URL %s is not an absolute http(s) URL", connector.RedactURL(src)))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, connector.Permanent(connector.Redacted(fmt.Errorf("file URL: %w", err)))
	}
	if withToken {
		if !c.cfg.tokenURL(src) {
			return nil, connector.Permanent(fmt.Errorf("%s is not a Slack file host; the bot token is not sent there", connector.RedactURL(src)))
		}
		req.Header.Set("Authorization", "Bearer "+c.cfg.BotToken.Reveal())
	}
	resp, err := client.Do(req)
	if err != nil {
		err = connector.Redacted(err)
		var re *netguard.RedirectError
		if netguard.IsBlocked(err) || errors.As(err, &re) {
			return nil, connector.Permanent(err)
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		connector.DrainClose(resp.Body)
		err := fmt.Errorf("GET %s: %s", connector.RedactURL(src), resp.Status)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			return nil, connector.Permanent(err)
		}
		return nil, err
	}
	return resp, nil
}

// upload puts an agent's attachment into the thread. One that cannot be
// fetched for good (gone, refused, an internal address, too large) is posted
// as a link instead, so the customer still learns of it.
func (c *Channel) upload(ctx context.Context, a address, att connector.Attachment) error {
	data, err := c.download(ctx, att.URL)
	if connector.IsPermanent(err) {
		c.log.Warn("attachment not uploaded; posting its link", zap.Error(err))
		return c.postLink(ctx, a, att)
	}
	if err != nil {
		return err
	}
	name := att.Name
	if name == "" {
		name = path.Base(att.URL)
	}
	if err := c.pace.wait(ctx, a.Channel); err != nil {
		return err
	}
	_, err = c.api.UploadFileContext(ctx, slack.UploadFileParameters{
		Reader: bytes.NewReader(data), FileSize: len(data), Filename: name, Title: name,
		Channel: a.Channel, ThreadTimestamp: a.Root,
	})
	c.noteAPI(err)
	return classify(err)
}

// download reads an agent's attachment through the guarded client: never
// an internal address unless fetch_allow lets it, at most max_file_bytes,
// within fetch_timeout.
func (c *Channel) download(ctx context.Context, src string) ([]byte, error) {
	resp, err := c.fetch(ctx, c.fetcher, src, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.ContentLength > c.cfg.MaxFileBytes {
		return nil, connector.Permanent(fmt.Errorf("attachment of %d bytes is larger than max_file_bytes (%d)", resp.ContentLength, c.cfg.MaxFileBytes))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxFileBytes+1))
	if err != nil {
		return nil, connector.Redacted(err)
	}
	if int64(len(data)) > c.cfg.MaxFileBytes {
		return nil, connector.Permanent(fmt.Errorf("attachment larger than max_file_bytes (%d)", c.cfg.MaxFileBytes))
	}
	return data, nil
}

func (c *Channel) postLink(ctx context.Context, a address, att connector.Attachment) error {
	if err := c.pace.wait(ctx, a.Channel); err != nil {
		return err
	}
	text := "<" + att.URL + ">"
	if att.Name != "" {
		text = "<" + att.URL + "|" + att.Name + ">"
	}
	opts := []slack.MsgOption{slack.MsgOptionText(text, false)}
	if a.Root != "" {
		opts = append(opts, slack.MsgOptionTS(a.Root))
	}
	_, _, err := c.api.PostMessageContext(ctx, a.Channel, opts...)
	c.noteAPI(err)
	return classify(err)
}
