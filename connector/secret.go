package connector

// Secret is a configuration value that must never be printed or logged. Its
// String, GoString and MarshalText all return a placeholder; Reveal returns the
// value for the one place that uses it.
type Secret string

const redacted = "[redacted]"

func (s Secret) String() string   { return redacted }
func (s Secret) GoString() string { return redacted }

// MarshalText keeps secrets out of JSON and TOML output.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalText reads the real value from configuration.
func (s *Secret) UnmarshalText(b []byte) error { *s = Secret(b); return nil }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// Empty reports whether no value was given.
func (s Secret) Empty() bool { return s == "" }
