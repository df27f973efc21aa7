package sms

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// Catch-up: Twilio retries a failed inbound webhook only for a short
// while. Messages it received while connectord was unreachable for longer
// are in its Messages list, and the channel reads them from there: at
// start, after API calls failed on the network and then got through again
// (connectord was likely unreachable too), and every catch_up_interval.
//
// Where to start is the newest customer message the store has for the
// channel (Receipts.LastReceived: its MessageSid and the time it was
// received). The channel lists, for each of its numbers, the inbound
// messages to it sent since the day before that time (Twilio's DateSent
// filter takes a day), keeps those Twilio received no earlier than the
// stored one (its own date_sent when the list shows it, else the receive
// time), and hands them to the core oldest first, screened as webhooks
// are. The core drops a MessageSid it has, so a message relayed twice
// (by a webhook and a catch-up at once) is stored once. A message older
// than the newest stored one is not relayed: it would arrive out of order.

const (
	catchUpPageSize = 200
	// maxCatchUp bounds one catch-up; the rest waits for the next one,
	// which starts after the newest relayed.
	maxCatchUp = 2000
)

// catchUpLoop runs catch-ups until ctx ends: one now, one when triggered,
// one every catch_up_interval.
func (c *Channel) catchUpLoop(ctx context.Context) {
	var tick <-chan time.Time
	if c.cfg.CatchUpInterval > 0 {
		t := time.NewTicker(c.cfg.CatchUpInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		if err := c.catchUp(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("catch-up from twilio's message list failed; tried again later", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-c.catchUpNow:
		case <-tick:
		}
	}
}

// triggerCatchUp asks the loop for a catch-up soon; it never blocks.
func (c *Channel) triggerCatchUp() {
	select {
	case c.catchUpNow <- struct{}{}:
	default:
	}
}

// catchUp relays what Twilio received since the newest stored customer
// message, once. It stops at the first message the core did not store.
func (c *Channel) catchUp(ctx context.Context) error {
	if c.receipts == nil || !c.cfg.CatchUp {
		return nil
	}
	lastSID, at, err := c.receipts.LastReceived(ctx, c.name)
	if err != nil {
		return fmt.Errorf("newest stored message: %w", err)
	}
	if at.IsZero() {
		return nil // nothing stored yet: nothing to continue from
	}
	missed, err := c.missed(ctx, lastSID, at)
	if err != nil {
		return err
	}
	for i, m := range missed {
		form, err := c.listedForm(ctx, m)
		if err != nil {
			return fmt.Errorf("relayed %d of %d missed messages: %w", i, len(missed), err)
		}
		in, err := c.inboundOf(form)
		if err != nil {
			c.log.Warn("listed message skipped", zap.String("message_sid", m.SID), zap.Error(err))
			continue
		}
		in.ReceivedAt = time.Now().UTC()
		if _, err := c.takeMissed(ctx, form, in); err != nil {
			return fmt.Errorf("relayed %d of %d missed messages: %w", i, len(missed), err)
		}
	}
	if len(missed) > 0 {
		c.log.Info("caught up on messages twilio received while connectord was unreachable",
			zap.Int("messages", len(missed)))
	}
	return nil
}

// missed lists the inbound messages to the channel's numbers that Twilio
// received since the stored message lastSID (received at), oldest first.
func (c *Channel) missed(ctx context.Context, lastSID string, at time.Time) ([]messageDoc, error) {
	var all []messageDoc
	since := at
	for _, to := range c.inboundNumbers() {
		msgs, err := c.listInbound(ctx, to, at.Add(-24*time.Hour))
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			if m.SID == lastSID {
				if sent, ok := twilioTime(m.DateSent); ok && sent.Before(since) {
					since = sent
				}
			}
		}
		all = append(all, msgs...)
	}
	since = since.Truncate(time.Second)
	all = slices.DeleteFunc(all, func(m messageDoc) bool {
		sent, ok := twilioTime(m.DateSent)
		return !ok || sent.Before(since) || m.SID == lastSID
	})
	// Each list is newest first; reversed, a stable sort by date keeps
	// Twilio's order within a second.
	slices.Reverse(all)
	slices.SortStableFunc(all, func(a, b messageDoc) int {
		ta, _ := twilioTime(a.DateSent)
		tb, _ := twilioTime(b.DateSent)
		return ta.Compare(tb)
	})
	if len(all) > maxCatchUp {
		c.log.Warn("more missed messages than one catch-up takes; the rest follow in the next",
			zap.Int("listed", len(all)), zap.Int("taken", maxCatchUp))
		all = all[:maxCatchUp]
	}
	return all, nil
}

// inboundNumbers are the numbers whose inbound messages the channel reads:
// from and numbers, or "" (all, filtered by Messaging Service) when a
// Messaging Service alone is configured.
func (c *Channel) inboundNumbers() []string {
	if c.cfg.From == "" {
		return []string{""}
	}
	return append([]string{c.cfg.From}, c.cfg.Numbers...)
}

// listInbound lists the inbound messages to the number to (any, for "")
// sent since the day of since, following pages up to maxCatchUp messages.
func (c *Channel) listInbound(ctx context.Context, to string, since time.Time) ([]messageDoc, error) {
	q := url.Values{"DateSent>": {since.UTC().Format(time.DateOnly)}, "PageSize": {strconv.Itoa(catchUpPageSize)}}
	if to != "" {
		q.Set("To", to)
	}
	page, err := c.listMessages(ctx, q)
	var out []messageDoc
	for pages := 0; ; pages++ {
		if err != nil {
			return nil, fmt.Errorf("list messages: %w", err)
		}
		for _, m := range page.Messages {
			if m.Direction == "inbound" && (to != "" || m.MessagingServiceSID == c.cfg.MessagingServiceSID) {
				out = append(out, m)
			}
		}
		if page.NextPageURI == "" || len(out) >= maxCatchUp || pages*catchUpPageSize >= 4*maxCatchUp {
			return out, nil
		}
		page, err = c.nextPage(ctx, page.NextPageURI)
	}
}

// form is the webhook a listed inbound message would have posted.
func (m messageDoc) form() webhookForm {
	f := webhookForm{"MessageSid": m.SID, "From": m.From, "To": m.To, "Body": m.Body, "NumMedia": m.NumMedia}
	if m.MessagingServiceSID != "" {
		f["MessagingServiceSid"] = m.MessagingServiceSID
	}
	return f
}

// twilioTime parses one of Twilio's date fields ("Mon, 16 Aug 2010 03:45:01 +0000").
func twilioTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC1123Z, s)
	return t, err == nil
}

// takeMissed screens and commits a message read from the list. Nothing is
// answered (there is no webhook to answer), and an opt-in keyword from a
// customer who is not opted out is dropped instead of relayed: opt-ins are
// not stored, so one acted on before is listed again after it.
func (c *Channel) takeMissed(ctx context.Context, form webhookForm, in connector.Inbound) (verdict, error) {
	if kind, _ := c.keywordOf(form, in.Text); kind == keywordOptIn {
		customer, number := c.parseAddress(in.Customer)
		out, err := c.optOuts.OptedOut(ctx, c.name, c.optOutSender(number), customer)
		if err != nil {
			return verdict{}, fmt.Errorf("read opt-out: %w", err)
		}
		if !out {
			c.log.Debug("listed opt-in keyword from a subscribed customer skipped", zap.String("message_sid", in.SourceID))
			return verdict{}, nil
		}
	}
	return c.take(ctx, form, in)
}

// listedForm is m's webhook form with its media, which the list leaves
// out: for an MMS, the message's Media list is read.
func (c *Channel) listedForm(ctx context.Context, m messageDoc) (webhookForm, error) {
	form := m.form()
	if n, err := strconv.Atoi(m.NumMedia); err != nil || n <= 0 {
		return form, nil
	}
	var page struct {
		MediaList []struct {
			ContentType string `json:"content_type"`
			URI         string `json:"uri"`
		} `json:"media_list"`
	}
	u := strings.TrimSuffix(c.messagesURL(nil), ".json") + "/" + url.PathEscape(m.SID) + "/Media.json"
	if _, err := c.call(ctx, http.MethodGet, u, nil, &page); err != nil {
		return nil, fmt.Errorf("list media of %s: %w", m.SID, err)
	}
	api := strings.TrimSuffix(c.cfg.APIURL, "/")
	for i, f := range page.MediaList[:min(len(page.MediaList), maxMedia)] {
		form["MediaUrl"+strconv.Itoa(i)] = api + strings.TrimSuffix(f.URI, ".json")
		form["MediaContentType"+strconv.Itoa(i)] = f.ContentType
	}
	form["NumMedia"] = strconv.Itoa(min(len(page.MediaList), maxMedia))
	return form, nil
}
