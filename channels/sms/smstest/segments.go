package smstest

import (
	"strings"
	"unicode/utf16"
)

// gsmBasic is the GSM 03.38 default alphabet (without the escape character); each of
// these characters takes one septet.
const gsmBasic = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

// gsmExtension holds the characters of the GSM extension table; each takes two
// septets (escape + character).
const gsmExtension = "^{}\\[~]|€\f"

// segments returns how many SMS segments Twilio bills for body: a GSM-7 body fits 160
// septets in one segment and 153 per segment when concatenated; any other body is
// sent as UCS-2, 70 UTF-16 units in one segment and 67 per segment when concatenated.
// An empty body (media only) counts as one segment. This approximation ignores that an
// escape pair or a surrogate pair is never split across segments.
func segments(body string) int {
	if n, ok := gsmSeptets(body); ok {
		return split(n, 160, 153)
	}
	return split(len(utf16.Encode([]rune(body))), 70, 67)
}

// gsmSeptets returns the number of septets body takes in GSM-7, and false when body
// has a character outside GSM-7.
func gsmSeptets(body string) (int, bool) {
	n := 0
	for _, r := range body {
		switch {
		case strings.ContainsRune(gsmBasic, r):
			n++
		case strings.ContainsRune(gsmExtension, r):
			n += 2
		default:
			return 0, false
		}
	}
	return n, true
}

func split(units, single, multi int) int {
	if units <= single {
		return 1
	}
	return (units + multi - 1) / multi
}
