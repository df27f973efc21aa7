package segment

import (
	"strings"
	"testing"
)

// A 1600-character reply of words, with one non-GSM character.
func benchText(n int) string {
	return strings.Repeat("Your order ships today. ", n/24+1)[:n-3] + "ok’"
}

func BenchmarkCount(b *testing.B) {
	gsm := strings.Repeat("Your order ships today. ", 67)[:1600]
	ucs := benchText(1600)
	b.Run("GSM-7/1600", func(b *testing.B) {
		for b.Loop() {
			Count(gsm)
		}
	})
	b.Run("UCS-2/1600", func(b *testing.B) {
		for b.Loop() {
			Count(ucs)
		}
	})
}

func BenchmarkSplit(b *testing.B) {
	for _, bc := range []struct {
		name  string
		n     int
		limit int
	}{
		{"1600/limit1600", 1600, 1600}, // one body: the common case
		{"1600/limit500", 1600, 500},   // the dynamic programme over 1600 characters
		{"6400/limit1600", 6400, 1600},
	} {
		text := benchText(bc.n)
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				Split(text, bc.limit)
			}
		})
	}
}
