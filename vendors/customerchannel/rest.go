package customerchannel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/connectord/connectord/connector"
)

// initChat asks the server for a conversation for c (POST /api/customer/init),
// one that replaces the lost chat replaces when that is not "".
// 500 and 503 (and a network failure) are retried by the router; 429 waits;
// any other refusal is permanent.
func (v *Vendor) initChat(ctx context.Context, c *connector.Conversation, replaces string) (initResponse, error) {
	body, err := json.Marshal(v.initRequest(c, replaces, time.Now()))
	if err != nil {
		return initResponse{}, connector.Permanent(err)
	}
	ctx, cancel := context.WithTimeout(ctx, v.cfg.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, v.cfg.URL+"/api/customer/init", bytes.NewReader(body))
	if err != nil {
		return initResponse{}, connector.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := v.http.Do(req)
	if err != nil {
		return initResponse{}, fmt.Errorf("init: %w", connector.Redacted(err))
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated:
	case resp.StatusCode == http.StatusTooManyRequests:
		return initResponse{}, connector.RetryAfter(fmt.Errorf("init: %s", resp.Status), 5*time.Second)
	case resp.StatusCode >= 500:
		return initResponse{}, fmt.Errorf("init: %s", resp.Status)
	default:
		return initResponse{}, connector.Permanent(fmt.Errorf("init refused: %s: %.200s", resp.Status, data))
	}
	var r initResponse
	if err := json.Unmarshal(data, &r); err != nil || r.ConversationID == "" || r.Participant.ID == "" {
		return initResponse{}, connector.Permanent(fmt.Errorf("init answer without conversationId and participant: %.200s", data))
	}
	return r, nil
}

// initRequest describes the customer: the name the channel knows (else the
// address), email and phone when known, the channel's name for the server,
// and a requestId that is the same for every attempt for one conversation,
// so a server that de-duplicates requests opens one chat. The chat that
// replaces a lost one (replaces) gets another requestId.
func (v *Vendor) initRequest(c *connector.Conversation, replaces string, now time.Time) initRequest {
	first, last, _ := strings.Cut(strings.TrimSpace(c.Profile.Name), " ")
	if first == "" {
		first = c.Customer
	}
	kind, _, _ := strings.Cut(c.Channel, ".")
	if name, ok := v.cfg.ChannelNames[kind]; ok {
		kind = name
	}
	lang := v.cfg.Language
	if c.Profile.Language != "" {
		lang = c.Profile.Language
	}
	phone := c.Profile.Phone
	if phone == "" && strings.HasPrefix(c.Customer, "+") {
		phone = c.Customer
	}
	return initRequest{FirstName: first, LastName: strings.TrimSpace(last), Email: c.Profile.Email, Phone: phone,
		Channel: kind, Language: lang, RefID: c.Customer, Subject: v.cfg.Subject,
		RequestID: requestID(v.name, c, replaces), Timestamp: now.UTC().Format(time.RFC3339)}
}

// requestID is a version-4-shaped GUID derived from the conversation and
// the lost chat it replaces ("": the first chat, hashed as before).
func requestID(vendor string, c *connector.Conversation, replaces string) string {
	in := fmt.Appendf(nil, "%s\x00%d\x00%d", vendor, c.ID, c.CreatedAt.UnixNano())
	if replaces != "" {
		in = fmt.Appendf(in, "\x00replaces\x00%s", replaces)
	}
	h := sha256.Sum256(in)
	h[6] = h[6]&0x0f | 0x40
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}
