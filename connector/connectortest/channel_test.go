package connectortest_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/connectortest"
)

// The channel suite runs against memChannel, whose remote side is a slice,
// and must catch each of its mutants in the named subtest.
var channelMutants = map[string]string{
	"ack-refused":          "RefusedInboundNotAcked",
	"permanent-not-acked":  "PermanentRefusalAcked",
	"new-id-on-redelivery": "RedeliveryKeepsSourceID",
	"resend-on-retry":      "RetriedSendNotRepeated",
	"reorder":              "SendInOrder",
}

func TestChannelSuite(t *testing.T) {
	connectortest.TestChannel(t, memChannelFixture(""))
}

func TestChannelSuiteCatchesBrokenChannels(t *testing.T) {
	runMutants(t, "TestChannelMutant", channelMutants)
}

// TestChannelMutant is only run by TestChannelSuiteCatchesBrokenChannels.
func TestChannelMutant(t *testing.T) {
	mutant := os.Getenv(mutantEnv)
	if mutant == "" || channelMutants[mutant] == "" {
		t.Skip("only run as a child of TestChannelSuiteCatchesBrokenChannels")
	}
	connectortest.TestChannel(t, memChannelFixture(mutant))
}

const memCustomer = "+15550001234"

// memChannel takes "webhooks" as function calls and sends to a slice.
type memChannel struct {
	sink     connector.ChannelSink
	progress connector.SendProgress
	mutant   string
	mu       *sync.Mutex
	sent     *[]string
	calls    int
}

func memChannelFixture(mutant string) connectortest.ChannelFixture {
	var mu sync.Mutex
	var sent []string
	var ch *memChannel
	seq := 0
	return connectortest.ChannelFixture{
		Start: func(t *testing.T, sink connector.ChannelSink, progress connector.SendProgress) connector.Channel {
			mu.Lock()
			sent = nil
			mu.Unlock()
			ch = &memChannel{sink: sink, progress: progress, mutant: mutant, mu: &mu, sent: &sent}
			return ch
		},
		Customer: memCustomer,
		Write: func(t *testing.T, text string) (bool, func() bool) {
			seq++
			id := fmt.Sprintf("M%d", seq)
			deliver := func() bool {
				if mutant == "new-id-on-redelivery" {
					seq++
					id = fmt.Sprintf("M%d", seq)
				}
				return ch.webhook(id, text)
			}
			return deliver(), deliver
		},
		Received: func(t *testing.T) []string {
			mu.Lock()
			defer mu.Unlock()
			return append([]string(nil), sent...)
		},
	}
}

// webhook is the channel's intake: true means "answered 200".
func (c *memChannel) webhook(id, text string) bool {
	err := c.sink.Receive(context.Background(), connector.Inbound{Channel: "mem.main", Customer: memCustomer, Text: text, SourceID: id})
	switch {
	case err == nil:
		return true
	case connector.IsPermanent(err):
		return c.mutant != "permanent-not-acked"
	default:
		return c.mutant == "ack-refused"
	}
}

func (c *memChannel) Name() string                { return "mem.main" }
func (c *memChannel) Start(context.Context) error { return nil }
func (c *memChannel) Stop(context.Context) error  { return nil }
func (c *memChannel) remoteID(id int64) string    { return fmt.Sprintf("R%d", id) }
func (c *memChannel) reorders(m *connector.Message) bool {
	return c.mutant == "reorder" && m.ID == 2
}

func (c *memChannel) Send(ctx context.Context, to string, m *connector.Message) (string, error) {
	done, err := c.progress.LoadProgress(ctx, m.ID)
	if err != nil {
		return "", err
	}
	if done != nil && c.mutant != "resend-on-retry" {
		return c.remoteID(m.ID), nil
	}
	c.mu.Lock()
	if c.reorders(m) && len(*c.sent) > 0 {
		*c.sent = append([]string{m.Text}, *c.sent...)
	} else {
		*c.sent = append(*c.sent, m.Text)
	}
	c.mu.Unlock()
	return c.remoteID(m.ID), c.progress.SaveProgress(ctx, m.ID, []byte("sent"))
}
