package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/connectord/connectord/connector"
)

// buildInfo is this binary's build: the version given at build time
// (main.version), else the module version the Go tool recorded, with the
// version control state it recorded.
func buildInfo() connector.BuildInfo { return connector.ReadBuildInfo(version) }

// cmdVersion prints the build: its first line is "connectord VERSION", so
// that a script reading only that line keeps working; -json prints all of
// it as JSON.
func cmdVersion(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the build as JSON")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %v", fs.Args())}
	}
	b := buildInfo()
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	}
	fmt.Fprintln(stdout, "connectord", b.Version)
	if b.Revision != "" {
		modified := ""
		if b.Modified {
			modified = " (modified: uncommitted changes)"
		}
		fmt.Fprintf(stdout, "revision  %s%s\n", b.Revision, modified)
	}
	if !b.Time.IsZero() {
		fmt.Fprintf(stdout, "time      %s\n", b.Time.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(stdout, "go        %s\n", b.GoVersion)
	return nil
}
