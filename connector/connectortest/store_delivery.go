package connectortest

import (
	"errors"
	"fmt"

	"github.com/connectord/connectord/connector"
)

var deliveryTests = []storeTest{
	{"OutboxOrderAndSettling", testOutbox},
	{"MarkSent", testMarkSent},
	{"MarkSentAfterFailed", testMarkSentAfterFailed},
	{"MarkUnknownMessage", testMarkUnknown},
	{"UpdateDeliveryMonotonic", testUpdateDeliveryMonotonic},
	{"UpdateDeliveryUnknownRemoteID", testUpdateDeliveryUnknown},
	{"UpdateDeliveryScopedByChannel", testUpdateDeliveryChannel},
	{"SendProgress", testSendProgress},
	{"NoteSendProgressLazy", testNoteSendProgress},
}

// testNoteSendProgress: a record kept without waiting for the disk is read
// back at once, replaced and cleared like a saved one, counts no synced
// write, and is refused for an unknown message.
func testNoteSendProgress(f *fixture) {
	conv := f.inbound(chSMS, alice, "SM1", "hi").Conversation.ID
	m := f.toCustomer(conv, "", "a")
	before, err := f.s.Stats(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, p := range []string{`{"sent":1}`, `{"sent":2}`} {
		if err := f.s.NoteSendProgress(f.ctx, m.ID, []byte(p)); err != nil {
			f.t.Fatalf("NoteSendProgress: %v", err)
		}
		if got, err := f.s.SendProgress(f.ctx, m.ID); err != nil || string(got) != p {
			f.t.Errorf("SendProgress after noting %s = %q, %v", p, got, err)
		}
	}
	after, err := f.s.Stats(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	if after.SyncedWrites != before.SyncedWrites {
		f.t.Errorf("two notes counted %d synced writes, want none", after.SyncedWrites-before.SyncedWrites)
	}
	if err := f.s.NoteSendProgress(f.ctx, m.ID, nil); err != nil {
		f.t.Fatal(err)
	}
	if got, _ := f.s.SendProgress(f.ctx, m.ID); len(got) != 0 {
		f.t.Errorf("progress after noting nil = %q", got)
	}
	if err := f.s.NoteSendProgress(f.ctx, 9999, []byte("x")); !errors.Is(err, connector.ErrNotFound) {
		f.t.Errorf("NoteSendProgress of an unknown message: %v, want ErrNotFound", err)
	}
}

// testSendProgress: an adapter's record of a message's partial send is kept
// while the message is stored, replaced by each save, cleared by nil and by
// MarkSent or MarkFailed, and refused for an unknown message.
func testSendProgress(f *fixture) {
	conv := f.inbound(chSMS, alice, "SM1", "hi").Conversation.ID
	a := f.toCustomer(conv, "", "a")
	b := f.toCustomer(conv, "", "b")
	load := func(id int64) string {
		p, err := f.s.SendProgress(f.ctx, id)
		if err != nil {
			f.t.Fatalf("SendProgress(%d): %v", id, err)
		}
		return string(p)
	}
	save := func(id int64, p []byte) {
		if err := f.s.SaveSendProgress(f.ctx, id, p); err != nil {
			f.t.Fatalf("SaveSendProgress(%d): %v", id, err)
		}
	}
	if got := load(a.ID); got != "" {
		f.t.Errorf("new message has progress %q", got)
	}
	save(a.ID, []byte(`{"sent":1}`))
	save(a.ID, []byte(`{"sent":2}`))
	save(b.ID, []byte(`{"files":1}`))
	if got := load(a.ID); got != `{"sent":2}` {
		f.t.Errorf("progress = %q, want the last saved", got)
	}
	save(b.ID, nil)
	if got := load(b.ID); got != "" {
		f.t.Errorf("progress after saving nil = %q", got)
	}
	save(b.ID, []byte(`{"files":2}`))
	f.markSent(a.ID, "R1")
	f.markFailed(b.ID, "gone")
	if got := load(a.ID) + load(b.ID); got != "" {
		f.t.Errorf("progress after MarkSent and MarkFailed = %q, want none", got)
	}
	save(a.ID, []byte(`{"late":true}`)) // a message no longer stored keeps none
	if got := load(a.ID); got != "" {
		f.t.Errorf("progress saved for a sent message: %q", got)
	}
	if err := f.s.SaveSendProgress(f.ctx, 9999, []byte("x")); !errors.Is(err, connector.ErrNotFound) {
		f.t.Errorf("SaveSendProgress of an unknown message: %v, want ErrNotFound", err)
	}
	if _, err := f.s.SendProgress(f.ctx, 9999); !errors.Is(err, connector.ErrNotFound) {
		f.t.Errorf("SendProgress of an unknown message: %v, want ErrNotFound", err)
	}
}

func testOutbox(f *fixture) {
	if got := f.outbox(); len(got) != 0 {
		f.t.Fatalf("new store has an outbox of %d", len(got))
	}
	a1 := f.inbound(chSMS, alice, "SM1", "a1").Message
	b1 := f.inbound(chSMS, bob, "SM2", "b1").Message
	a2 := f.toCustomer(a1.ConversationID, "", "a2")
	a3 := f.inbound(chSMS, alice, "SM3", "a3").Message
	f.diff("outbox", []*connector.Message{a1, b1, a2, a3}, f.outbox())

	f.markSent(a1.ID, "")
	f.markFailed(a2.ID, "unreachable")
	f.diff("outbox after MarkSent and MarkFailed", []int64{b1.ID, a3.ID}, ids(f.outbox()))
	if m := f.message(a2.ConversationID, a2.ID); m.State != connector.DeliveryFailed || m.Reason != "unreachable" {
		f.t.Errorf("MarkFailed: state %q reason %q, want failed (unreachable)", m.State, m.Reason)
	}
	f.markSent(b1.ID, "")
	f.markSent(a3.ID, "")
	if got := f.outbox(); len(got) != 0 {
		f.t.Errorf("outbox after settling everything: %v", ids(got))
	}
}

func testMarkSent(f *fixture) {
	conv := f.inbound(chSMS, alice, "SM1", "hi").Conversation.ID
	m := f.toCustomer(conv, "", "hello")
	f.markSent(m.ID, "SMa")
	got := f.message(conv, m.ID)
	if got.State != connector.DeliverySent || got.RemoteID != "SMa" {
		f.t.Errorf("after MarkSent: state %q remote %q, want sent SMa", got.State, got.RemoteID)
	}
	if got.UpdatedAt.Before(m.UpdatedAt) {
		f.t.Errorf("UpdatedAt went back from %v to %v", m.UpdatedAt, got.UpdatedAt)
	}
	// A second MarkSent (a retry after an unknown outcome) changes nothing.
	f.markSent(m.ID, "SMb")
	f.diff("after a second MarkSent", got, f.message(conv, m.ID))
	// Nor does MarkSent after a delivery report.
	f.updateDelivery(chSMS, "SMa", connector.DeliveryDelivered, "")
	f.markSent(m.ID, "SMc")
	if got := f.message(conv, m.ID); got.State != connector.DeliveryDelivered || got.RemoteID != "SMa" {
		f.t.Errorf("MarkSent after delivered: state %q remote %q, want delivered SMa", got.State, got.RemoteID)
	}
}

func testMarkSentAfterFailed(f *fixture) {
	m := f.inbound(chSMS, alice, "SM1", "hi").Message
	f.markFailed(m.ID, "conversation ended")
	failed := f.message(m.ConversationID, m.ID)
	f.markSent(m.ID, "late")
	f.diff("failed message after MarkSent", failed, f.message(m.ConversationID, m.ID))
	if failed.State != connector.DeliveryFailed || failed.Reason != "conversation ended" {
		f.t.Errorf("after MarkFailed: state %q reason %q", failed.State, failed.Reason)
	}
	if len(f.outbox()) != 0 {
		f.t.Errorf("a failed message is in the outbox")
	}
}

func testMarkUnknown(f *fixture) {
	if err := f.s.MarkSent(f.ctx, 987654, "x"); !errors.Is(err, connector.ErrNotFound) {
		f.t.Errorf("MarkSent of an unknown message: %v, want ErrNotFound", err)
	}
	if err := f.s.MarkFailed(f.ctx, 987654, "x"); !errors.Is(err, connector.ErrNotFound) {
		f.t.Errorf("MarkFailed of an unknown message: %v, want ErrNotFound", err)
	}
}

func testUpdateDeliveryMonotonic(f *fixture) {
	const (
		stored    = connector.DeliveryStored
		sent      = connector.DeliverySent
		delivered = connector.DeliveryDelivered
		failed    = connector.DeliveryFailed
	)
	tests := []struct {
		before []connector.Delivery // reports applied first, after MarkSent
		report connector.Delivery
		want   connector.Delivery
	}{
		{nil, sent, sent},
		{nil, delivered, delivered},
		{nil, failed, failed},
		{nil, stored, sent},
		{[]connector.Delivery{delivered}, sent, delivered},
		{[]connector.Delivery{delivered}, failed, delivered},
		{[]connector.Delivery{delivered}, delivered, delivered},
		{[]connector.Delivery{failed}, delivered, failed},
		{[]connector.Delivery{failed}, sent, failed},
		{[]connector.Delivery{sent, delivered}, sent, delivered},
	}
	conv := f.inbound(chSMS, alice, "SM1", "hi").Conversation.ID
	for i, tc := range tests {
		remote := fmt.Sprintf("SMr%d", i)
		m := f.toCustomer(conv, "", remote)
		f.markSent(m.ID, remote)
		for _, d := range tc.before {
			f.updateDelivery(chSMS, remote, d, "carrier says "+string(d))
		}
		if found := f.updateDelivery(chSMS, remote, tc.report, "carrier says "+string(tc.report)); !found {
			f.t.Errorf("%v then %s: found=false", tc.before, tc.report)
		}
		got := f.message(conv, m.ID)
		if got.State != tc.want {
			f.t.Errorf("%v then %s: state %q, want %q", tc.before, tc.report, got.State, tc.want)
		}
		if wantReason := "carrier says failed"; tc.want == failed && got.Reason != wantReason {
			f.t.Errorf("%v then %s: reason %q, want %q", tc.before, tc.report, got.Reason, wantReason)
		}
		if got.RemoteID != remote {
			f.t.Errorf("%v then %s: remote id %q, want %q", tc.before, tc.report, got.RemoteID, remote)
		}
	}
}

func testUpdateDeliveryUnknown(f *fixture) {
	if f.updateDelivery(chSMS, "SMnever", connector.DeliveryDelivered, "") {
		f.t.Errorf("UpdateDelivery for an unknown remote id reported found")
	}
	// A stored message with no remote id is not found by an empty one.
	f.toCustomer(f.inbound(chSMS, alice, "SM1", "hi").Conversation.ID, "", "x")
	if f.updateDelivery(chSMS, "", connector.DeliveryDelivered, "") {
		f.t.Errorf("UpdateDelivery with an empty remote id reported found")
	}
}

func testUpdateDeliveryChannel(f *fixture) {
	smsConv := f.inbound(chSMS, alice, "SM1", "hi").Conversation.ID
	slackConv := f.inbound(chSlack, alice, "EV1", "hi").Conversation.ID
	onSMS := f.toCustomer(smsConv, "", "by sms")
	onSlack := f.toCustomer(slackConv, "", "by slack")
	f.markSent(onSMS.ID, "R1")
	f.markSent(onSlack.ID, "R1") // the same remote id, given by another channel

	if !f.updateDelivery(chSlack, "R1", connector.DeliveryDelivered, "") {
		f.t.Fatalf("UpdateDelivery(slack, R1) not found")
	}
	if st := f.message(smsConv, onSMS.ID).State; st != connector.DeliverySent {
		f.t.Errorf("a slack report changed the sms message to %q", st)
	}
	if st := f.message(slackConv, onSlack.ID).State; st != connector.DeliveryDelivered {
		f.t.Errorf("slack message is %q, want delivered", st)
	}
	if f.updateDelivery("sms.other", "R1", connector.DeliveryFailed, "x") {
		f.t.Errorf("UpdateDelivery on a channel that sent nothing reported found")
	}
	if st := f.message(smsConv, onSMS.ID).State; st != connector.DeliverySent {
		f.t.Errorf("a report for another channel changed the sms message to %q", st)
	}
}
