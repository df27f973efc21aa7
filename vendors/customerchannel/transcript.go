package customerchannel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// ended forgets a conversation that is over and, when configured, gets its
// transcript in the background: the server answers 404 until it has closed
// the chat, so the request is repeated for up to transcript_wait. The wait
// is in memory: a transcript pending at a restart is not fetched.
func (v *Vendor) ended(id string) {
	v.mu.Lock()
	l, ok := v.live[id]
	stopped := v.stopped
	v.mu.Unlock()
	v.untrack(id)
	if !ok || v.cfg.Transcript == "" || stopped {
		return
	}
	if v.cfg.Transcript == "email" && l.c.Profile.Email == "" {
		v.log.Debug("no transcript email: the customer's email is not known", zap.Int64("conversation", l.conv))
		return
	}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		ctx, cancel := v.untilStop()
		defer cancel()
		v.transcript(ctx, l)
	}()
}

// untilStop is a context that ends at Stop (or at cancel), for work that
// outlives the call that started it: a transcript fetch after End.
func (v *Vendor) untilStop() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-v.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (v *Vendor) transcript(ctx context.Context, l *live) {
	url := fmt.Sprintf("%s/api/customer/transcript/%s/%s", v.cfg.URL, neturl.PathEscape(l.s.ConversationID), v.cfg.Transcript)
	deadline := time.Now().Add(v.cfg.TranscriptWait)
	for attempt := 0; ; attempt++ {
		status, err := v.get(ctx, url)
		switch {
		case err == nil && status == http.StatusOK:
			v.deliverTranscript(ctx, l, url)
			return
		case errors.Is(err, errTranscriptTooLarge):
			v.log.Warn("transcript not sent", zap.Int64("conversation", l.conv), zap.Error(connector.Redacted(err)))
			return
		case ctx.Err() != nil:
			return
		case time.Now().After(deadline):
			v.log.Warn("transcript not available", zap.Int64("conversation", l.conv), zap.Int("status", status),
				zap.Error(connector.Redacted(err)))
			return
		}
		sleep(ctx, min(250*time.Millisecond<<min(attempt, 6), 10*time.Second))
	}
}

// errTranscriptTooLarge: the server's transcript is over transcript_max_bytes.
var errTranscriptTooLarge = errors.New("transcript over transcript_max_bytes")

// get asks for url and reports the status. The body (a PDF, or nothing for
// email) is read and dropped, at most transcript_max_bytes of it: the PDF
// travels to the customer by its URL, and one larger than that is not sent
// (the channel would have to fetch all of it).
func (v *Vendor) get(ctx context.Context, url string) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := v.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	limit := v.cfg.TranscriptMaxBytes
	if resp.StatusCode == http.StatusOK && resp.ContentLength > limit {
		return resp.StatusCode, fmt.Errorf("%w: announced %d bytes, limit %d", errTranscriptTooLarge, resp.ContentLength, limit)
	}
	n, err := io.Copy(io.Discard, io.LimitReader(resp.Body, limit+1))
	switch {
	case resp.StatusCode == http.StatusOK && n > limit:
		return resp.StatusCode, fmt.Errorf("%w: more than %d bytes", errTranscriptTooLarge, limit)
	case err != nil:
		return resp.StatusCode, fmt.Errorf("reading the transcript: %w", err)
	}
	return resp.StatusCode, nil
}

// withoutUserinfo drops credentials from a URL that leaves for a third
// party: the customer's channel (Twilio, Slack) fetches the transcript by
// its URL, and the chat server's user and password must not go with it.
func withoutUserinfo(raw string) string {
	u, err := neturl.Parse(raw)
	if err != nil {
		return connector.RedactURL(raw)
	}
	u.User = nil
	return u.String()
}

// deliverTranscript sends the PDF to the customer where they wrote, as the
// ended conversation's last message, so it follows the end notice; email
// needs nothing more.
func (v *Vendor) deliverTranscript(ctx context.Context, l *live, url string) {
	if v.cfg.Transcript != "pdf" {
		v.log.Info("transcript emailed", zap.Int64("conversation", l.conv))
		return
	}
	if v.outbound == nil {
		return
	}
	err := v.outbound.Outbound(ctx, connector.Outbound{Vendor: v.name, Channel: l.c.Channel, Customer: l.c.Customer,
		Conversation: l.conv, Text: "Transcript of your chat", SourceID: "transcript:" + l.s.ConversationID,
		Attachments: []connector.Attachment{{URL: withoutUserinfo(url), Name: "transcript.pdf", ContentType: "application/pdf"}}})
	if err != nil {
		v.log.Error("transcript not stored", zap.Int64("conversation", l.conv), zap.Error(err))
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
