package sms

import (
	"github.com/connectord/connectord/connector"
)

// deliveryOf maps a status callback's MessageStatus (and ErrorCode) to a
// delivery state. final is false for the intermediate states (queued,
// accepted, scheduled, sending) and for statuses this version does not know,
// which are acknowledged and otherwise ignored.
//
// "sent" is acknowledged and ignored too: it can change nothing. The report
// finds the message by the SID that the core's sent mark records, and that
// mark already made the message sent; before the mark (or when a crash lost
// it) no message has the SID yet. Storing it would cost a commit per SMS.
func deliveryOf(status, errorCode string) (state connector.Delivery, reason string, final bool) {
	switch status {
	case "delivered", "read":
		return connector.DeliveryDelivered, "", true
	case "failed", "undelivered", "canceled":
		return connector.DeliveryFailed, failureReason(status, errorCode), true
	}
	return "", "", false
}

// failureReason is the reason stored with a failed message:
// "twilio ErrorCode 30003 (unreachable destination handset)".
func failureReason(status, errorCode string) string {
	if errorCode == "" || errorCode == "0" {
		return "twilio status " + status
	}
	r := "twilio ErrorCode " + errorCode
	if m := errorMeaning(errorCode); m != "" {
		r += " (" + m + ")"
	}
	return r
}

// errorMeaning spells out the delivery error codes worth it
// (https://www.twilio.com/docs/api/errors), or returns "".
func errorMeaning(code string) string {
	switch code {
	case "21610":
		return "recipient opted out"
	case "21614":
		return "not a mobile number"
	case "30001":
		return "queue overflow"
	case "30002":
		return "account suspended"
	case "30003":
		return "unreachable destination handset"
	case "30004":
		return "message blocked"
	case "30005":
		return "unknown destination handset"
	case "30006":
		return "landline or unreachable carrier"
	case "30007":
		return "filtered by the carrier"
	case "30008":
		return "unknown error"
	case "30034":
		return "sender not registered for A2P 10DLC"
	}
	return ""
}
