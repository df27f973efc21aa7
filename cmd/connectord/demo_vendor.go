package main

import (
	"context"
	"fmt"
	"time"

	"github.com/connectord/connectord/vendors/customerchannel/customerchanneltest"
	"github.com/connectord/connectord/vendors/whoson/whosontest"
)

// demoVendor is the agent's side of the demo: a fake contact-center product
// with a scripted agent, and the daemon's configuration block for it.
type demoVendor struct {
	block string // the vendor's configuration block
	name  string // the vendor instance, for the route
	intro string
	// start, when set, runs once the daemon is starting, before the first
	// line is read; shown grows with what the customer was shown.
	start func(ctx context.Context, shown func() int) error
	close func()
}

// demoVendorFlag checks -vendor against -channel; it returns what is wrong,
// "" when nothing is.
func demoVendorFlag(vendor, channel string) string {
	switch {
	case vendor != "whoson" && vendor != "customerchannel":
		return fmt.Sprintf("-vendor must be whoson or customerchannel, not %q", vendor)
	case vendor == "customerchannel" && channel != "sms":
		return "-vendor customerchannel runs with -channel sms: the simulator's campaign goes to an SMS customer"
	}
	return ""
}

// newDemoVendor starts the fake for vendor; channel is the channel instance
// the customer writes on.
func newDemoVendor(ctx context.Context, vendor, channel string) (*demoVendor, error) {
	if vendor == "customerchannel" {
		return customerChannelDemo(ctx, channel)
	}
	whoson, err := whosontest.New(whosontest.Config{Operator: demoOperator()})
	if err != nil {
		return nil, fmt.Errorf("fake whoson: %w", err)
	}
	return &demoVendor{
		block: fmt.Sprintf(demoWhosOnConfig, whoson.URL()),
		name:  "whoson.demo",
		intro: "A scripted WhosOn operator answers. ",
		close: whoson.Close,
	}, nil
}

// demoCampaign is the message the chat server starts itself, which reaches
// the customer through connectord's registerConnector.
const demoCampaign = "Example Co: your order #1042 has shipped and arrives Thursday. Questions? Just reply to this message."

// customerChannelDemo runs the Customer Channel chat server's simulator
// (Node.js; its packages must be installed) with a scripted agent who greets
// the customer and echoes their lines. Once the daemon starts, the server
// sends a campaign SMS to the customer: it waits at the server until
// connectord registers as the "sms" connector, then goes out on channel.
func customerChannelDemo(ctx context.Context, channel string) (*demoVendor, error) {
	if err := customerchanneltest.Requirements(); err != nil {
		return nil, fmt.Errorf("-vendor customerchannel runs the Customer Channel simulator from the source tree: %w", err)
	}
	sim, err := customerchanneltest.Start(ctx, 4)
	if err != nil {
		return nil, fmt.Errorf("customer channel simulator: %w", err)
	}
	agent := customerchanneltest.AutoAgent{Name: "Dana", JoinDelay: 500 * time.Millisecond,
		Greeting: "Hi, I'm Dana from Example Co. How can I help with your order?", Echo: true}
	if err := sim.AutoAgent(ctx, agent); err != nil {
		sim.Close()
		return nil, fmt.Errorf("customer channel simulator: %w", err)
	}
	return &demoVendor{
		block: fmt.Sprintf(demoCustomerChannelConfig, sim.URL, channel),
		name:  "customerchannel.demo",
		intro: "The Customer Channel chat server first sends you a campaign SMS through connectord;\n" +
			"answer it to reach its scripted agent, Dana, who repeats what you write. ",
		start: func(ctx context.Context, shown func() int) error {
			if _, err := sim.Campaign(ctx, demoCustomer, demoCampaign, "", "sms"); err != nil {
				return fmt.Errorf("campaign message: %w", err)
			}
			// The customer's first line answers the campaign: read it
			// only once the campaign SMS is out.
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			for shown() == 0 {
				select {
				case <-wctx.Done():
					return fmt.Errorf("the campaign SMS did not arrive: %w", wctx.Err())
				case <-time.After(20 * time.Millisecond):
				}
			}
			return nil
		},
		close: sim.Close,
	}, nil
}
