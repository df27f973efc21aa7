package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/connectord/connectord/connector"
)

// The operator commands' tables. Every value that comes from a customer,
// an agent or a vendor goes through cell: a control character in it (an
// escape sequence written by a customer) would otherwise act on the
// operator's terminal.

// render prints a command's answer as a table.
func render(cmd string, body []byte, w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var err error
	switch cmd {
	case "status":
		err = renderAs(body, tw, renderStatus)
	case "conversations":
		err = renderAs(body, tw, renderList)
	case "conversation":
		err = renderAs(body, tw, renderConversation)
	case "end":
		err = renderAs(body, tw, renderEnded)
	default:
		err = renderAs(body, tw, renderRetried)
	}
	if err != nil {
		return err
	}
	return tw.Flush()
}

func renderAs[T any](body []byte, w io.Writer, f func(w io.Writer, v T, now time.Time)) error {
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("the daemon's answer is not what this connectord expects (another version?): %w", err)
	}
	f(w, v, time.Now())
	return nil
}

func renderStatus(w io.Writer, st connector.StatusReport, now time.Time) {
	rev := ""
	if st.Build.Revision != "" {
		rev = " (" + cell(st.Build.Revision, 12) + ")"
	}
	fmt.Fprintf(w, "instance\t%s, version %s%s\n", cell(st.Instance, 64), cell(st.Build.Version, 64), rev)
	fmt.Fprintf(w, "ready\t%s\n", yesNo(st.Ready))
	fmt.Fprintf(w, "conversations\tpending %d, queued %d, active %d, ended %d\n", st.Conversations[connector.StatePending],
		st.Conversations[connector.StateQueued], st.Conversations[connector.StateActive], st.Conversations[connector.StateEnded])
	outbox := "empty"
	if st.Outbox.OldestAt != nil {
		outbox = fmt.Sprintf("%d waiting, the oldest for %s", st.Outbox.Depth, since(*st.Outbox.OldestAt, now))
	}
	fmt.Fprintf(w, "outbox\t%s\n", outbox)
	atLeast := ""
	if st.Stuck.AtLeast {
		atLeast = " or more"
	}
	fmt.Fprintf(w, "stuck\t%d%s (a message waiting over %s or failed within %s; list them: connectord conversations -stuck)\n",
		st.Stuck.Count, atLeast, seconds(st.Stuck.WaitingOverSeconds), seconds(st.Stuck.FailedWithinSeconds))
	fmt.Fprintf(w, "\nPART\tSTATE\tDETAIL\n")
	fmt.Fprintf(w, "store\t%s\t%s\n", upDown(st.Store.Ready), cell(st.Store.Detail, 100))
	for _, name := range slices.Sorted(maps.Keys(st.Adapters)) {
		h := st.Adapters[name]
		fmt.Fprintf(w, "%s\t%s\t%s\n", cell(name, 64), upDown(h.Ready), cell(h.Detail, 100))
	}
}

// seconds prints a count of seconds as a duration ("1m0s").
func seconds(s float64) string { return time.Duration(s * float64(time.Second)).String() }

func renderList(w io.Writer, l connector.ConversationList, now time.Time) {
	if len(l.Conversations) == 0 {
		fmt.Fprintln(w, "no conversation matches")
		return
	}
	fmt.Fprintln(w, "ID\tCHANNEL\tCUSTOMER\tVENDOR\tSTATE\tAGENT\tAGE\tIDLE")
	for _, c := range l.Conversations {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, cell(c.Channel, 32), cell(c.Customer, 40),
			cell(c.Vendor, 32), stateOf(c), cell(c.Agent, 24), since(c.CreatedAt, now), since(c.LastActivity, now))
	}
	if l.NextBefore != 0 {
		fmt.Fprintf(w, "(more: add -before %d)\n", l.NextBefore)
	}
}

func renderConversation(w io.Writer, d connector.ConversationDetail, now time.Time) {
	c := d.Conversation
	fmt.Fprintf(w, "conversation\t%d\n", c.ID)
	fmt.Fprintf(w, "customer\t%s on %s\n", cell(c.Customer, 64), cell(c.Channel, 32))
	if c.Profile.Name != "" || c.Profile.Email != "" {
		fmt.Fprintf(w, "profile\t%s %s\n", cell(c.Profile.Name, 64), cell(c.Profile.Email, 64))
	}
	fmt.Fprintf(w, "vendor\t%s\n", cell(c.Vendor, 32))
	fmt.Fprintf(w, "state\t%s\n", stateOf(c))
	if c.Agent != "" {
		fmt.Fprintf(w, "agent\t%s\n", cell(c.Agent, 64))
	}
	if c.Owner != "" {
		fmt.Fprintf(w, "owner\t%s\n", cell(c.Owner, 64))
	}
	fmt.Fprintf(w, "created\t%s (%s ago)\n", c.CreatedAt.Local().Format(time.DateTime), since(c.CreatedAt, now))
	fmt.Fprintf(w, "\nMSG\tTIME\tTO\tKIND\tSTATE\tTEXT\n")
	if d.MessagesOmitted > 0 {
		fmt.Fprintf(w, "\t\t\t\t\t(%d older messages not shown)\n", d.MessagesOmitted)
	}
	for _, m := range d.Messages {
		state := string(m.State)
		if m.Reason != "" {
			state += ": " + cell(m.Reason, 60)
		}
		to := "agent"
		if m.Direction == connector.ToCustomer {
			to = "customer"
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", m.ID, m.CreatedAt.Local().Format(time.TimeOnly), to,
			cell(string(m.Kind), 16), state, cell(m.Text, 60))
	}
}

func renderEnded(w io.Writer, d connector.ConversationDetail, _ time.Time) {
	fmt.Fprintf(w, "conversation %d ended (%s); the customer is sent notices.ended_by_operator\n",
		d.Conversation.ID, cell(d.Conversation.EndReason, 64))
}

func renderRetried(w io.Writer, d connector.MessageDetail, _ time.Time) {
	fmt.Fprintf(w, "message %d of conversation %d is %s again: it is sent like a new one\n",
		d.Message.ID, d.Message.ConversationID, d.Message.State)
}

func stateOf(c connector.ConversationView) string {
	if c.State == connector.StateEnded && c.EndReason != "" {
		return "ended: " + cell(c.EndReason, 40)
	}
	return cell(string(c.State), 16)
}

// cell makes s safe and short for one table cell: control characters
// (newlines, tabs, escapes) become spaces or are dropped, and it is cut to
// at most n runes, with a mark.
func cell(s string, n int) string {
	var b strings.Builder
	count := 0
	for _, r := range s {
		if count == n {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError:
			r = '?'
		case r == '\n' || r == '\r' || r == '\t':
			r = ' '
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			continue
		}
		b.WriteRune(r)
		count++
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// since is how long ago t was, to the second; "-" for no time.
func since(t time.Time, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return max(now.Sub(t), 0).Round(time.Second).String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "NO"
}

func upDown(b bool) string {
	if b {
		return "up"
	}
	return "DOWN"
}
