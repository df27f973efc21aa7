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
	var gsm packer
	for _, r := range text {
		n := septets(r)
		if n == 0 {
			return countUCS2(text)
		}
		gsm.add(n, gsmMulti)
	}
	return Info{Encoding: GSM7, Segments: gsm.segments(gsmSingle), Units: gsm.total}
}

func countUCS2(text string) Info {
	var ucs packer
	for _, r := range text {
		ucs.add(utf16.RuneLen(r), ucsMulti)
	}
	return Info{Encoding: UCS2, Segments: ucs.segments(ucsSingle), Units: ucs.total}
}

// packer fills the parts of a concatenated SMS greedily, a character of
// size units at a time, never letting one straddle two parts. Greedy is
// optimal: no other placement of the same characters in order needs fewer
// parts.
type packer struct {
	total int // units in all
	full  int // parts closed so far
	fill  int // units in the open part
}

func (p *packer) add(size, multi int) {
	p.total += size
	if p.fill+size > multi {
		p.full++
		p.fill = 0
	}
	p.fill += size
}

// segments is one when everything fits a single SMS, else the parts.
func (p *packer) segments(single int) int {
	if p.total <= single {
		return 1
	}
	return p.full + 1
}
