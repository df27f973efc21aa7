package main

import (
	"bytes"
	"strings"
	"testing"
)

// -h lists the commands rather than the flags of the default command.
func TestHelpListsCommands(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "help"} {
		var out, errOut bytes.Buffer
		if code := run([]string{arg}, strings.NewReader(""), &out, &errOut); code != 0 {
			t.Errorf("%s: exit %d (%s)", arg, code, errOut.String())
		}
		for _, want := range []string{"run", "check-config", "version", "demo"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: output lacks %q:\n%s", arg, want, out.String())
			}
		}
	}
}
