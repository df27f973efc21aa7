package segment

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	"",
	"hello",
	strings.Repeat("a", 161),
	strings.Repeat("a", 152) + "€" + strings.Repeat("a", 152),
	strings.Repeat("ж", 66) + "👋" + strings.Repeat("ж", 66),
	strings.Repeat("abcd ", 300) + "Thanks 👋 " + strings.Repeat("efgh ", 100),
	"We’re sorry – “#1234”…\u00a0\t\u200b",
	"a\xffb\xe2\x80 \xe2\u200b\x80\x9c",
}

// FuzzCount checks Count against a packing of the encoded body built
// independently: GSM-7 as septets with the escape written out, UCS-2 as
// UTF-16 units, each cut into parts without splitting a pair.
func FuzzCount(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got := Count(text)
		want := referenceCount(text)
		if got != want {
			t.Fatalf("Count(%q) = %+v, reference %+v", text, got, want)
		}
		// Output bound: a rune is at most 2 units, a segment holds at least
		// one character.
		runes := utf8.RuneCountInString(text)
		if got.Units > 2*runes || got.Segments < 1 || got.Segments > max(runes, 1) {
			t.Fatalf("Count(%q) = %+v out of bounds for %d runes", text, got, runes)
		}
	})
}

// referenceCount encodes text into its code units, marking the units that
// may not end a part (an escape, a high surrogate), and packs them.
func referenceCount(text string) Info {
	var units []bool // true: must stay with the next unit
	gsm := true
	for _, r := range text {
		switch {
		case strings.ContainsRune(gsmExtensionTable, r):
			units = append(units, true, false)
		case strings.ContainsRune(gsmTable, r) && r != 0x1b:
			units = append(units, false)
		default:
			gsm = false
		}
	}
	single, multi := gsmSingle, gsmMulti
	if !gsm {
		single, multi = ucsSingle, ucsMulti
		units = units[:0]
		for _, u := range utf16.Encode([]rune(text)) {
			units = append(units, utf16.IsSurrogate(rune(u)) && u < 0xDC00)
		}
	}
	info := Info{Encoding: GSM7, Units: len(units), Segments: 1}
	if !gsm {
		info.Encoding = UCS2
	}
	if len(units) <= single {
		return info
	}
	for start := 0; ; info.Segments++ {
		end := start + multi
		if end >= len(units) {
			return info
		}
		if units[end-1] {
			end--
		}
		start = end
	}
}

func FuzzSplit(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, uint16(1600))
		f.Add(s, uint16(100))
	}
	f.Fuzz(func(t *testing.T, text string, limit uint16) {
		maxUnits := int(limit % 2000)
		got := Split(text, maxUnits)
		checkSplit(t, text, max(maxUnits, 2), got)
		// Output bound: the bodies hold no more than the text.
		size := 0
		for _, b := range got {
			size += len(b)
		}
		if size > len(text) || len(got) > utf8.RuneCountInString(text) {
			t.Fatalf("%d bodies of %d bytes from %d bytes", len(got), size, len(text))
		}
		if utf8.RuneCountInString(text) <= 120 && maxUnits <= 300 {
			if want, have := reference(text, max(maxUnits, 2)), layout(t, text, got); want != have {
				t.Fatalf("Split(%q, %d): cost %+v, reference %+v", text, maxUnits, have, want)
			}
		}
	})
}

func FuzzNormalize(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got := Normalize(text)
		if len(got) > 3*len(text) || utf8.RuneCountInString(got) > 3*utf8.RuneCountInString(text) {
			t.Fatalf("Normalize(%q) = %q: more than three times as long", text, got)
		}
		if again := Normalize(got); again != got {
			t.Fatalf("Normalize(%q) = %q, then %q", text, got, again)
		}
		if !utf8.ValidString(got) {
			t.Fatalf("Normalize(%q) = %q is not valid UTF-8", text, got)
		}
		if Count(text).Encoding == GSM7 && got != text {
			t.Fatalf("Normalize changed GSM-7 text %q to %q", text, got)
		}
	})
}

func FuzzTruncate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, uint8(1), " [...]")
		f.Add(s, uint8(3), "…")
	}
	f.Fuzz(func(t *testing.T, text string, maxSegments uint8, mark string) {
		n := int(maxSegments % 30)
		got, cut := Truncate(text, n, mark)
		if c := Count(got); c.Segments > max(n, 1) {
			t.Fatalf("Truncate(%q, %d, %q) = %q: %d segments", text, n, mark, got, c.Segments)
		}
		if !cut {
			if got != text {
				t.Fatalf("Truncate(%q) = %q, not cut", text, got)
			}
			return
		}
		// Output bound: a start of the text and the mark, if it fitted.
		head, ok := strings.CutSuffix(got, mark)
		if !ok || Count(mark).Segments > max(n, 1) {
			head = got
		}
		if !strings.HasPrefix(text, head) || head != strings.TrimRightFunc(head, unicode.IsSpace) ||
			len(got) > len(text)+len(mark) {
			t.Fatalf("Truncate(%q, %d, %q) = %q: not a trimmed start of the text and the mark", text, n, mark, got)
		}
	})
}
