package slacktest

import (
	"crypto/rand"
	"fmt"
)

const upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomString is n characters drawn from alphabet.
func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// newEventID looks like Slack's: "Ev0" and 9 more characters.
func newEventID() string { return "Ev0" + randomString(9, upperAlnum) }

// newFileID looks like Slack's: "F" and 10 more characters.
func newFileID() string { return "F0" + randomString(9, upperAlnum) }

// newUUID is a random (version 4) UUID, the shape of Socket Mode envelope IDs.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
