package smstest

import (
	"strings"
	"testing"
)

func TestSegments(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int
	}{
		{"empty", "", 1},
		{"short", "hello", 1},
		{"160 GSM", strings.Repeat("a", 160), 1},
		{"161 GSM", strings.Repeat("a", 161), 2},
		{"306 GSM", strings.Repeat("a", 306), 2},
		{"307 GSM", strings.Repeat("a", 307), 3},
		{"GSM accents", strings.Repeat("é", 160), 1},
		{"extension counts twice", strings.Repeat("€", 80), 1},
		{"extension past 160", strings.Repeat("{", 81), 2},
		{"70 UCS-2", strings.Repeat("ж", 70), 1},
		{"71 UCS-2", strings.Repeat("ж", 71), 2},
		{"134 UCS-2", strings.Repeat("ж", 134), 2},
		{"135 UCS-2", strings.Repeat("ж", 135), 3},
		{"one emoji forces UCS-2", strings.Repeat("a", 69) + "👋", 2}, // 69 + 2 UTF-16 units
		{"1600 GSM", strings.Repeat("a", 1600), 11},
		{"1600 UCS-2", strings.Repeat("ж", 1600), 24},
	}
	for _, tt := range tests {
		if got := segments(tt.body); got != tt.want {
			t.Errorf("%s: segments = %d, want %d", tt.name, got, tt.want)
		}
	}
}
