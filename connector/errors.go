package connector

import (
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned by a Store for a missing conversation or message.
var ErrNotFound = errors.New("not found")

// ErrWrongState is returned (wrapped) when an operation does not apply to
// a conversation or message as it stands: ending a conversation that has
// ended, retrying a message that has not failed. The admin API answers it
// with 409.
var ErrWrongState = errors.New("wrong state")

// ErrChatLost is what a vendor returns (wrapped with %w, from Resume, Send
// or LeaveMessage) when it knows the vendor will not continue this
// conversation's chat: the server forgot it across a restart or a
// reconnect. It is not the end of the conversation: the core opens a new
// vendor chat for it at once, tells the customer they were reconnected,
// gives the new agent a context line (KindContext), then the customer's
// pending lines in order. A vendor that learns it while nothing of the
// core is waiting on it (its socket came back and the chat is gone) reports
// EventLost instead.
var ErrChatLost = errors.New("the vendor lost the chat")

// PermanentError marks a failure that retrying cannot fix (an invalid number,
// a refused conversation). The Router stops retrying and ends the
// conversation with a notice to the customer.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError; nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err is, or wraps, a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryAfterError asks for the next attempt no sooner than After (HTTP 429
// with Retry-After, Twilio 20429).
type RetryAfterError struct {
	Err   error
	After time.Duration
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %s)", e.Err, e.After)
}
func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter wraps err with the delay the remote side asked for.
func RetryAfter(err error, after time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, After: after}
}

// RetryDelay returns the delay err asks for, if it does.
func RetryDelay(err error) (time.Duration, bool) {
	var r *RetryAfterError
	if errors.As(err, &r) {
		return r.After, true
	}
	return 0, false
}
