package slack

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/connectord/connectord/connector"
)

// intake hands a customer's Slack message to the core. It returns nil when
// the message is committed, was a duplicate, or is not for us (our own bot,
// an edit, a channel we do not watch); an error means nothing was committed
// and the event must be redelivered. The app's identity must be known.
func (c *Channel) intake(ctx context.Context, m *message) error {
	if why := c.ignored(m); why != "" {
		c.log.Debug("slack message ignored", zap.String("why", why), zap.String("slack_channel", m.Channel), zap.String("ts", m.TS))
		return nil
	}
	in := connector.Inbound{Channel: c.name, SourceID: sourceID(m.Channel, m.TS), ReceivedAt: tsTime(m.TS)}
	a := m.address()
	in.Customer = a.String()
	in.Continues = a.Root != "" && a.Root != m.TS
	if c.isEndKeyword(m.Text) && len(m.Files) == 0 {
		in.End = true
	} else {
		// References stay tokens until Resolve names them (refs.go);
		// their lookups start now, and the commit does not wait for them.
		in.Text = storedText(m.Text)
		c.names.prefetch(storedRefs(in.Text))
		in.Attachments = c.attachments(m.Files)
	}
	in.Profile = c.profile(ctx, m)
	return c.sink.Receive(ctx, in)
}

// ignored says why a message is not a customer message for us, or "".
func (c *Channel) ignored(m *message) string {
	self := c.self.Load()
	switch {
	case m.Type != "" && m.Type != "message":
		return "not a message"
	case !customerSubtypes[m.Subtype]:
		return "subtype " + m.Subtype // edits, deletions, joins
	case self != nil && (m.User == self.UserID || m.BotID != "" && m.BotID == self.BotID):
		return "our own message"
	case m.BotID != "" && !c.cfg.AllowBots:
		return "another app's bot"
	case m.User == "" && m.BotID == "":
		return "no author"
	case m.Channel == "" || m.TS == "":
		return "no channel or ts"
	case !m.isDM() && !c.channels[m.Channel]:
		return "channel not configured"
	case strings.TrimSpace(m.Text) == "" && len(m.Files) == 0:
		return "empty"
	}
	return ""
}

// customerSubtypes are the message subtypes that carry something a person (or,
// with allow_bots, another app) wrote; bot_message is then told apart by its bot_id.
var customerSubtypes = map[string]bool{"": true, "file_share": true, "thread_broadcast": true, "bot_message": true}

func (c *Channel) isEndKeyword(text string) bool {
	return c.cfg.EndKeyword != "" && strings.EqualFold(strings.TrimSpace(text), c.cfg.EndKeyword)
}

// authorWait bounds how long a commit waits for users.info to name the
// message's author: the commit must fit in Slack's 3 s (the Events API
// answer, the Socket Mode ack) whatever Slack's API does. The lookup goes on
// without it and caches the name for the author's next message.
const authorWait = 800 * time.Millisecond

// profile is who the customer is, for the agent: from users.info (cached),
// else (a Slack Connect guest users.info does not show, or users.info slow)
// from the event's user_profile. A lookup that does not answer within
// authorWait, or half the time ctx has left, leaves it to the event's
// profile, or empty, rather than hold up the commit.
func (c *Channel) profile(ctx context.Context, m *message) connector.Profile {
	var p person
	if m.User != "" {
		wait := authorWait
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl)/2)
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		p, _ = c.names.user(wctx, m.User)
		cancel()
	}
	if p.Name == "" && m.UserProfile != nil {
		up := m.UserProfile
		p.Name = firstOf(up.DisplayName, up.RealName, up.Name)
	}
	return connector.Profile{Name: p.Name, Email: p.Email}
}

// attachments turns shared files into links the agent can open. A file
// Slack hosts is reached through our own signed link when connectord has a
// public URL (Slack's file URLs need the bot token), else by Slack's own URL.
// An external or remote file (is_external, or a URL on a host that is not
// Slack's) is linked as it is: the proxy would send it the bot token.
func (c *Channel) attachments(files []slackFile) []connector.Attachment {
	var out []connector.Attachment
	for _, f := range files {
		name := firstOf(f.Name, f.Title)
		src := firstOf(f.URLPrivateDownload, f.URLPrivate)
		if f.IsExternal {
			src = firstOf(f.URLPrivate, f.URLPrivateDownload)
		}
		if u, err := url.Parse(src); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			continue // no URL (a file we may not see, or deleted), or not a web link
		}
		link := src
		if !f.IsExternal && c.cfg.tokenURL(src) && c.publicURL != "" {
			link = c.links.url(c.publicURL+c.path, f.ID, name, src, time.Now())
		}
		out = append(out, connector.Attachment{URL: link, Name: name, ContentType: f.Mimetype, Size: f.Size})
	}
	return out
}

// tsTime reads a Slack ts ("1763900000.000100") as a time; zero when it is not one.
func tsTime(ts string) time.Time {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}
	}
	us, _ := strconv.ParseInt((frac + "000000")[:6], 10, 64)
	return time.Unix(s, us*1000)
}

// tsOf writes a time as a Slack ts, for history bounds.
func tsOf(t time.Time) string {
	return strconv.FormatInt(t.Unix(), 10) + "." + strconv.FormatInt(int64(t.Nanosecond()/1000)+1000000, 10)[1:]
}

// tsAfter reports whether Slack ts a is later than b.
func tsAfter(a, b string) bool {
	return tsTime(a).After(tsTime(b))
}
