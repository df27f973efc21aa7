package segment

import (
	"strings"
	"testing"
)

func TestCount(t *testing.T) {
	rep := strings.Repeat
	tests := []struct {
		name string
		in   string
		want Info
	}{
		{"empty", "", Info{GSM7, 1, 0}},
		{"short", "hello", Info{GSM7, 1, 5}},
		{"160 GSM", rep("a", 160), Info{GSM7, 1, 160}},
		{"161 GSM", rep("a", 161), Info{GSM7, 2, 161}},
		{"306 GSM", rep("a", 306), Info{GSM7, 2, 306}},
		{"307 GSM", rep("a", 307), Info{GSM7, 3, 307}},
		{"1600 GSM", rep("a", 1600), Info{GSM7, 11, 1600}},
		{"70 UCS-2", rep("ж", 70), Info{UCS2, 1, 70}},
		{"71 UCS-2", rep("ж", 71), Info{UCS2, 2, 71}},
		{"134 UCS-2", rep("ж", 134), Info{UCS2, 2, 134}},
		{"135 UCS-2", rep("ж", 135), Info{UCS2, 3, 135}},
		{"1600 UCS-2", rep("ж", 1600), Info{UCS2, 24, 1600}},
		{"GSM accents are one septet", rep("é", 160), Info{GSM7, 1, 160}},
		{"extension counts twice", rep("€", 80), Info{GSM7, 1, 160}},
		{"extension past 160", rep("{", 81), Info{GSM7, 2, 162}},
		{"form feed is an extension character", "\f", Info{GSM7, 1, 2}},
		// 152 septets, then an escape pair that would straddle 153/154:
		// it moves whole to part 2, which then holds 2 + 153 = 155 > 153.
		{"escape pair not split", rep("a", 152) + "€" + rep("a", 152), Info{GSM7, 3, 306}},
		{"escape pair just fits", rep("a", 151) + "€" + rep("a", 153), Info{GSM7, 2, 306}},
		// 66 units, then a surrogate pair over units 67/68: it moves whole.
		{"surrogate pair not split", rep("ж", 66) + "👋" + rep("ж", 66), Info{UCS2, 3, 134}},
		{"surrogate pair just fits", rep("ж", 65) + "👋" + rep("ж", 67), Info{UCS2, 2, 134}},
		{"emoji alone", "👋", Info{UCS2, 1, 2}},
		{"one emoji forces UCS-2", rep("a", 69) + "👋", Info{UCS2, 2, 71}},
		{"GSM é in 100", rep("a", 99) + "é", Info{GSM7, 1, 100}},
		{"non-GSM ê in 100", rep("a", 99) + "ê", Info{UCS2, 2, 100}},
		{"curly quote", "don’t", Info{UCS2, 1, 5}},
		{"grave accent is not GSM", "`", Info{UCS2, 1, 1}},
		{"tab is not GSM", "a\tb", Info{UCS2, 1, 3}},
		{"lower-case ç is not GSM", "ç", Info{UCS2, 1, 1}},
		{"bad UTF-8 counts as U+FFFD", "a\xffb", Info{UCS2, 1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Count(tt.in); got != tt.want {
				t.Errorf("Count = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// gsmTable spells out the GSM 7-bit default alphabet's basic table in code
// order (0x1B, the escape, left out), independently of septets' switch.
const gsmTable = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"

const gsmExtensionTable = "\f^{}\\[~]|€"

func TestSeptetsMatchesTheTables(t *testing.T) {
	if n := len([]rune(gsmTable)); n != 128 {
		t.Fatalf("test table has %d characters, want 128", n)
	}
	want := map[rune]int{}
	for _, r := range gsmTable {
		want[r] = 1
	}
	delete(want, 0x1b) // the escape is no character of its own
	for _, r := range gsmExtensionTable {
		want[r] = 2
	}
	// Every rune up to U+FFFF and a few above: exactly the tables' ones count.
	for r := rune(0); r <= 0x10FFFF; r++ {
		if r > 0xFFFF && r&0xFFF != 0 {
			continue
		}
		if got := septets(r); got != want[r] {
			t.Errorf("septets(%U %q) = %d, want %d", r, r, got, want[r])
		}
	}
}
