package connector

import (
	"strings"
	"testing"

	"go.uber.org/zap"
)

// FuzzParseConfig feeds any text to the loader and check-config's checks:
// they must return (no panic, no hang), and what they report is bounded by
// what they were given.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(baseConfig))
	f.Add([]byte("[http]\nadmin_listen = \"\"\n[notices]\nqueued = \"{{if .Agent}}{{.Agent}}{{end}}\"\n"))
	f.Add([]byte("x = [[[[{a = {b = 1}}]]]]\n[[routes]]\nchannel = 1\n"))
	f.Add([]byte("[store]\ndsn_file = \"/dev/null\"\nretention = 5\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		x := Expander{Getenv: func(string) (string, bool) { return "v", true }, CredentialsDir: "/nonexistent"}
		cfg, err := ParseConfig(data, x)
		var report strings.Builder
		for _, e := range Problems(err) {
			report.WriteString(e.Error())
		}
		if cfg != nil {
			for _, e := range Problems(Check(cfg, Registry{}, zap.NewNop())) {
				report.WriteString(e.Error())
			}
		}
		if limit := 16*len(data) + 16<<10; report.Len() > limit {
			t.Errorf("%d bytes of errors for %d bytes of input (limit %d)", report.Len(), len(data), limit)
		}
	})
}
