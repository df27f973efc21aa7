package segment

import "unicode/utf16"

// Encoding is the character coding an SMS body travels in.
type Encoding uint8

const (
	// GSM7 is the GSM 7-bit default alphabet: 160 septets in a single SMS,
	// 153 in each part of a concatenated one.
	GSM7 Encoding = iota
	// UCS2 is 16-bit UCS-2 (UTF-16 on today's handsets): 70 code units in a
	// single SMS, 67 in each part of a concatenated one.
	UCS2
)

// String returns "GSM-7" or "UCS-2".
func (e Encoding) String() string {
	if e == UCS2 {
		return "UCS-2"
	}
	return "GSM-7"
}

// Capacities per segment. A concatenated message gives up part of each
// segment to the user data header that numbers the parts: 6 octets, that is
// 7 septets (153 = 160 - 7) or 3 UCS-2 units (67 = 70 - 3).
const (
	gsmSingle = 160
	gsmMulti  = 153
	ucsSingle = 70
	ucsMulti  = 67
)

// Info is what Count finds out about a message body.
type Info struct {
	// Encoding is GSM7 when every character of the body is in the GSM
	// default alphabet or its extension table, else UCS2.
	Encoding Encoding
	// Segments is how many SMS the body is sent (and billed) as: at least 1.
	Segments int
	// Units is the body's length in the encoding's units: septets for GSM7
	// (an extension-table character counts 2), UTF-16 code units for UCS2
	// (a character outside the Basic Multilingual Plane counts 2).
	Units int
}

// Count returns the encoding, segment count and length of an SMS body.
//
// A body that fits a single SMS is one segment; a longer one is cut into
// parts of at most 153 septets or 67 UTF-16 units, and never between an
// escape septet and its extension character, nor between the two halves of
// a surrogate pair: a character that does not fit whole starts the next
// part. One character outside GSM-7 makes the whole body UCS-2.
//
// The empty body is one segment of zero units, as Twilio's published
// segment calculator counts it: an SMS with no text is still one message.
// Invalid UTF-8 counts as U+FFFD per bad byte, which is not GSM-7.
func Count(text string) Info {
	total, gsmOK := 0, true
	for _, r := range text {
		n := septets(r)
		if n == 0 {
			gsmOK = false
			break
		}
		total += n
	}
	if gsmOK {
		return Info{Encoding: GSM7, Units: total, Segments: pack(text, gsmSingle, gsmMulti, total, septets)}
	}
	units := 0
	for _, r := range text {
		units += utf16.RuneLen(r)
	}
	return Info{Encoding: UCS2, Units: units, Segments: pack(text, ucsSingle, ucsMulti, units, utf16.RuneLen)}
}

// pack returns the number of segments text takes when its characters,
// weighing size(r) units each, total units: one if that fits single,
// otherwise the parts of a greedy fill of multi units each in which no
// character straddles two parts. Greedy is optimal here: any other
// placement of the same characters in order needs at least as many parts.
func pack(text string, single, multi, total int, size func(rune) int) int {
	if total <= single {
		return 1
	}
	parts, fill := 1, 0
	for _, r := range text {
		n := size(r)
		if fill+n > multi {
			parts++
			fill = 0
		}
		fill += n
	}
	return parts
}
