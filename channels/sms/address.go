package sms

import (
	"slices"
	"strings"
)

// A conversation's customer address says which of our numbers answers it.
//
// The core keys a conversation by (channel, customer address) and stores
// the address with it, so the address is the one thing every instance
// sharing a store, and a restarted one, reads back for each reply: the
// channel puts the number the customer wrote to in it. A customer who
// writes to the default sender (from) is addressed by their number alone,
// as before several numbers existed, so that stored conversations and
// vendor-started messages (a campaign names a plain number) keep working;
// one who writes to another of numbers is "+15557654321@+15551230001".
// Writing to a second number starts a conversation of its own, which is
// also how carriers see it: opt-outs and the 14107 limit are per pair.

// addressSep joins a customer's number and the number of ours they wrote to.
const addressSep = "@"

// addressOf is the conversation address of customer from who wrote to to.
// A to that is not one of numbers (the default sender, or a number this
// channel was not told about) gives the plain number: replies go from the
// default sender.
func (c *Channel) addressOf(from, to string) string {
	if to == "" || to == c.cfg.From || !slices.Contains(c.cfg.Numbers, to) {
		return from
	}
	return from + addressSep + to
}

// parseAddress returns the customer's number in addr and the number of ours
// that answers them: one of numbers, or "" for the default sender.
func (c *Channel) parseAddress(addr string) (customer, number string) {
	i := strings.LastIndex(addr, addressSep)
	if i < 0 || !slices.Contains(c.cfg.Numbers, addr[i+1:]) {
		return addr, ""
	}
	return addr[:i], addr[i+1:]
}

// fromNumber is the number a message to a customer addressed through number
// ("" for the default sender) goes from; "" when a Messaging Service picks.
func (c *Channel) fromNumber(number string) string {
	if number != "" {
		return number
	}
	return c.cfg.From
}

// optOutSender is the sender an opt-out through number (the number written
// to, "" for the default sender) is recorded against: the Messaging Service
// when the channel sends through one (a STOP to any of its numbers blocks
// the whole service at Twilio), else the number.
func (c *Channel) optOutSender(number string) string {
	if c.cfg.MessagingServiceSID != "" {
		return c.cfg.MessagingServiceSID
	}
	return c.fromNumber(number)
}
