package segment

import "testing"

func TestNormalize(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", ""},
		{"plain GSM unchanged", "Hello, @you: 5€ {ok}", "Hello, @you: 5€ {ok}"},
		{"single quotes", "‘don’t’ ‚x‛ ′ ‵ ʼ ´ `", "'don't' 'x' ' ' ' ' '"},
		{"double quotes", "“a” „b‟ ″ «c»", `"a" "b" " "c"`},
		{"dashes", "a‐b‑c‒d–e—f―g−h", "a-b-c-d-e-f-g-h"},
		{"bullets", "• one\n‣ two\n◦ three ⁃ ∙", "- one\n- two\n- three - -"},
		{"ellipsis", "Wait…", "Wait..."},
		{"spaces", "a\tb\u00a0c\u2002d\u2009e\u202ff\u205fg\u3000h\u1680i", "a b c d e f g h i"},
		{"line breaks", "a\vb\u0085c\u2028d\u2029e", "a\nb\nc\nd\ne"},
		{"invisible removed", "co\u00adop\u200B\u2060er\uFEFFate", "cooperate"},
		{"modifier letters", "ˆ˜⁄", "^~/"},
		{"letters GSM lacks are kept", "ê á ç Ж 👋", "ê á ç Ж 👋"},
		{"zero-width joiner kept", "👩\u200d💻", "👩\u200d💻"},
		{"bad UTF-8 becomes U+FFFD", "a\xffb\xe2\x80", "a\uFFFDb\uFFFD\uFFFD"},
		{"bad bytes around a removed character stay apart", "\xe2\u200b\x80\x9c", "\uFFFD\uFFFD\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Normalize(tt.in)
			if got != tt.want {
				t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if again := Normalize(got); again != got {
				t.Errorf("Normalize is not idempotent: %q then %q", got, again)
			}
		})
	}
}

// A reply pasted from a word processor goes from UCS-2 to GSM-7: from 2
// segments (123 units) to 1 (125 septets).
func TestNormalizeKeepsGSM(t *testing.T) {
	in := "We’re sorry – your order “#1234” shipped today… Reply STOP to opt out. " +
		"Questions? Call us at 555\u00a0123\u00a04567 — we’re here 9–5."
	if c := Count(in); c.Encoding != UCS2 || c.Segments != 2 {
		t.Fatalf("Count(in) = %+v, want UCS-2 in 2 segments", c)
	}
	if c := Count(Normalize(in)); c.Encoding != GSM7 || c.Segments != 1 {
		t.Errorf("Count(Normalize(in)) = %+v, want GSM-7 in 1 segment", c)
	}
}
