package slack

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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
)

// linkSigner makes and checks the links agents open customers' files with.
// Slack serves shared files only with the bot token, which must not leave
// connectord; the link names the file and carries an HMAC, and connectord
// fetches the file with the token when the link is opened.
type linkSigner struct {
	key []byte
	ttl time.Duration
}

func newLinkSigner(botToken string, ttl time.Duration) *linkSigner {
	// Derived from the bot token: a new token (a reinstall) voids old links,
	// and no extra secret needs configuring.
	k := sha256.Sum256([]byte("connectord slack file links\x00" + botToken))
	return &linkSigner{key: k[:], ttl: ttl}
}

func (s *linkSigner) sign(id, name, src string, exp int64) string {
	m := hmac.New(sha256.New, s.key)
	fmt.Fprintf(m, "%s\x00%s\x00%s\x00%d", id, name, src, exp)
	return hex.EncodeToString(m.Sum(nil))
}

// url is the link for file id, served under base ("https://host/slack/NAME").
func (s *linkSigner) url(base, id, name, src string, now time.Time) string {
	exp := now.Add(s.ttl).Unix()
	q := url.Values{"src": {base64.RawURLEncoding.EncodeToString([]byte(src))},
		"exp": {strconv.FormatInt(exp, 10)}, "sig": {s.sign(id, name, src, exp)}}
	return base + "/files/" + url.PathEscape(id) + "/" + url.PathEscape(name) + "?" + q.Encode()
}

// check returns the Slack URL a link stands for; status is the HTTP answer
// when the link is not good.
func (s *linkSigner) check(id, name string, q url.Values, now time.Time) (src string, status int) {
	raw, err := base64.RawURLEncoding.DecodeString(q.Get("src"))
	exp, err2 := strconv.ParseInt(q.Get("exp"), 10, 64)
	if err != nil || err2 != nil || !hmac.Equal([]byte(s.sign(id, name, string(raw), exp)), []byte(q.Get("sig"))) {
		return "", http.StatusForbidden
	}
	if now.Unix() > exp {
		return "", http.StatusGone
	}
	return string(raw), 0
}

// serveFile streams a customer's file to whoever holds a good link.
func (c *Channel) serveFile(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("name")
	src, status := c.links.check(id, name, r.URL.Query(), time.Now())
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	resp, err := c.fetch(r.Context(), src, true)
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
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	io.Copy(w, io.LimitReader(resp.Body, c.cfg.MaxFileBytes))
}

// fetch GETs a file; withToken adds the bot token (Slack's own file URLs
// only: never send it to an agent's URL). A non-200 answer is an error.
func (c *Channel) fetch(ctx context.Context, src string, withToken bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, connector.Permanent(fmt.Errorf("file URL: %w", err))
	}
	if withToken {
		req.Header.Set("Authorization", "Bearer "+c.cfg.BotToken.Reveal())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err := fmt.Errorf("GET %s: %s", redactURL(src), resp.Status)
		if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
			return nil, connector.Permanent(err)
		}
		return nil, err
	}
	return resp, nil
}

// upload puts an agent's attachment into the thread. One that cannot be
// fetched for good (gone, refused, too large) is posted as a link instead, so
// the customer still learns of it.
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

func (c *Channel) download(ctx context.Context, src string) ([]byte, error) {
	resp, err := c.fetch(ctx, src, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxFileBytes+1))
	if err != nil {
		return nil, err
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

// redactURL drops a URL's query, where tokens and signatures live.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery, u.User = "", nil
	return u.String()
}
