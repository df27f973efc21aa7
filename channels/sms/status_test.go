package sms

import (
	"testing"

	"github.com/connectord/connectord/connector"
)

func TestDeliveryOf(t *testing.T) {
	tests := []struct {
		status, code string
		state        connector.Delivery
		reason       string
		final        bool
	}{
		{"accepted", "", "", "", false},
		{"scheduled", "", "", "", false},
		{"queued", "", "", "", false},
		{"sending", "", "", "", false},
		{"receiving", "", "", "", false},
		{"sent", "", "", "", false}, // the sent mark already says it
		{"delivered", "", connector.DeliveryDelivered, "", true},
		{"read", "", connector.DeliveryDelivered, "", true},
		{"undelivered", "30003", connector.DeliveryFailed, "twilio ErrorCode 30003 (unreachable destination handset)", true},
		{"failed", "30034", connector.DeliveryFailed, "twilio ErrorCode 30034 (sender not registered for A2P 10DLC)", true},
		{"failed", "12345", connector.DeliveryFailed, "twilio ErrorCode 12345", true},
		{"failed", "", connector.DeliveryFailed, "twilio status failed", true},
		{"canceled", "0", connector.DeliveryFailed, "twilio status canceled", true},
	}
	for _, tt := range tests {
		state, reason, final := deliveryOf(tt.status, tt.code)
		if state != tt.state || reason != tt.reason || final != tt.final {
			t.Errorf("deliveryOf(%q, %q) = %q, %q, %v; want %q, %q, %v",
				tt.status, tt.code, state, reason, final, tt.state, tt.reason, tt.final)
		}
	}
}
