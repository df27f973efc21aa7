package connector

import (
	"runtime"
	"runtime/debug"
	"time"
)

// BuildInfo says which build of connectord is running: what `connectord
// version` prints, the admin API's status reports and connectord_build_info
// exports.
type BuildInfo struct {
	// Version is the release version (given at build time with -ldflags
	// "-X main.version=..."), else the module version the Go tool recorded
	// ("(devel)" for a build from a checkout).
	Version string `json:"version"`
	// Revision, Time and Modified are the version control state of the
	// checkout it was built from, when the Go tool recorded it: the commit,
	// its time, and whether the tree had uncommitted changes.
	Revision  string    `json:"revision,omitempty"`
	Time      time.Time `json:"time,omitzero"`
	Modified  bool      `json:"modified"`
	GoVersion string    `json:"go_version"`
}

// ReadBuildInfo reads the running binary's build information; version,
// when not empty, wins over the module version (a release build sets it).
func ReadBuildInfo(version string) BuildInfo {
	b := BuildInfo{Version: version, GoVersion: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		if b.Version == "" {
			b.Version = "unknown"
		}
		return b
	}
	if b.Version == "" {
		b.Version = info.Main.Version
	}
	return b.withSettings(info.Settings)
}

// withSettings fills in the version control fields from the Go tool's
// build settings.
func (b BuildInfo) withSettings(settings []debug.BuildSetting) BuildInfo {
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				b.Time = t
			}
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}
