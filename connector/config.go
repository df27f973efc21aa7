package connector

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the daemon's whole configuration; config.example.toml shows
// every key with its default.
type Config struct {
	Daemon       DaemonConfig       `toml:"daemon"`
	Log          LogConfig          `toml:"log"`
	HTTP         HTTPConfig         `toml:"http"`
	Store        StoreConfig        `toml:"store"`
	Conversation ConversationConfig `toml:"conversation"`
	Notices      Notices            `toml:"notices"`
	Routes       []Route            `toml:"routes"`

	// Channels and Vendors are the adapter blocks, sorted by path; each kind's
	// Build decodes its own keys.
	Channels []Instance `toml:"-"`
	Vendors  []Instance `toml:"-"`

	md toml.MetaData
}

// DaemonConfig is [daemon].
type DaemonConfig struct {
	InstanceID      string        `toml:"instance_id"`
	StateDir        string        `toml:"state_dir"`
	ShutdownTimeout time.Duration `toml:"shutdown_timeout"`
	// ReadyWait bounds how long run waits for every adapter to be ready
	// before it tells systemd READY=1 anyway (with what is not ready in
	// STATUS=): intake must not wait for a vendor that is down.
	ReadyWait time.Duration `toml:"ready_wait"`
}

// LogConfig is [log].
type LogConfig struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// HTTPConfig is [http].
type HTTPConfig struct {
	Listen    string `toml:"listen"`
	PublicURL string `toml:"public_url"`
	// AdminListen serves the detailed /readyz and /metrics; "" serves
	// neither. It must never be reachable from outside.
	AdminListen string `toml:"admin_listen"`
	// MaxBodyBytes bounds every request body.
	MaxBodyBytes int64 `toml:"max_body_bytes"`
	// MaxConnections bounds the public listener's open connections.
	MaxConnections int `toml:"max_connections"`
	// MaxInflight bounds the webhooks being handled at once; past it a
	// webhook is answered 503 with Retry-After, which Twilio and Slack
	// retry, instead of queueing without bound behind a stalled store.
	MaxInflight int `toml:"max_inflight"`
	// AdminPprof serves net/http/pprof under /debug/pprof/ on the admin
	// listener. Off by default: a profile shows internals and costs CPU.
	AdminPprof bool `toml:"admin_pprof"`
	// AdminToken, when set, is the bearer token every admin route but
	// /livez and /readyz asks for (the operator API, the status page,
	// /metrics). Required when admin_listen is not a loopback address.
	AdminToken Secret `toml:"admin_token"`
}

// minAdminToken is the shortest admin token accepted: a short one is
// guessed.
const minAdminToken = 16

// Instance is daemon.instance_id, or the host name when it is empty.
func (c *Config) Instance() string {
	if c.Daemon.InstanceID != "" {
		return c.Daemon.InstanceID
	}
	host, _ := os.Hostname()
	return host
}

// validInstanceID reports whether id can name an instance in a shared store
// (and in its notifications).
func validInstanceID(id string) bool {
	if id == "" || len(id) > 63 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// StoreConfig is [store].
type StoreConfig struct {
	Driver string `toml:"driver"`
	DSN    Secret `toml:"dsn"`
	// Retention deletes ended conversations and their messages this long
	// after they ended; 0 keeps everything.
	Retention time.Duration `toml:"retention"`
	// Lease is how long an instance's claim on its conversations lasts
	// without renewal when several instances share a PostgreSQL store: a
	// dead instance's conversations move to the others about this long
	// after it died. It is renewed every third of it.
	Lease time.Duration `toml:"lease"`
}

// ConversationConfig is [conversation]: the Router's timing.
type ConversationConfig struct {
	// InactivityTimeout ends a conversation with no message either way for this long.
	InactivityTimeout time.Duration `toml:"inactivity_timeout"`
	// RetryInitial and RetryMax bound the exponential back-off between attempts.
	RetryInitial time.Duration `toml:"retry_initial"`
	RetryMax     time.Duration `toml:"retry_max"`
	// GiveUpAfter fails a message still not delivered this long after it was stored.
	GiveUpAfter time.Duration `toml:"give_up_after"`
	// CustomerRate and CustomerBurst pace what one conversation sends to its
	// customer: CustomerBurst at once, then one per CustomerRate; the rest
	// waits in the outbox. CustomerRate 0 sends as fast as the channel takes.
	CustomerRate  time.Duration `toml:"customer_rate"`
	CustomerBurst int           `toml:"customer_burst"`
	// MaxOpen caps the conversations open at vendors per channel; a new one
	// past it waits (the customer is told) until one ends. 0: no cap.
	MaxOpen int `toml:"max_open"`
	// MaxAgentLine caps an agent line's bytes; a longer one is cut, with a
	// mark, before it is stored.
	MaxAgentLine int `toml:"max_agent_line"`
	// ContextLines is how many of the conversation's last lines the context
	// line quotes for the agent of a chat opened again after the vendor lost
	// the first; 0 quotes none (the line still says who and where).
	ContextLines int `toml:"context_lines"`
	// ReopenWindow: a chat the vendor loses again this soon after it was
	// opened again ends instead (a vendor that keeps losing it).
	ReopenWindow time.Duration `toml:"reopen_window"`
	// OutboxSweep is how often every message still waiting is queued again
	// if no lane holds it: the safety net for a commit whose caller gave up.
	OutboxSweep time.Duration `toml:"outbox_sweep"`
}

// Route sends the conversations of a channel to a vendor; the first match wins.
type Route struct {
	Channel string `toml:"channel"`
	Vendor  string `toml:"vendor"`
}

func defaultConfig() Config {
	return Config{
		Daemon: DaemonConfig{StateDir: "/var/lib/connectord", ShutdownTimeout: 20 * time.Second, ReadyWait: 30 * time.Second},
		Log:    LogConfig{Level: "info", Format: "json"},
		HTTP: HTTPConfig{Listen: "127.0.0.1:8080", AdminListen: "127.0.0.1:9464",
			MaxBodyBytes: 1 << 20, MaxConnections: 1024, MaxInflight: 256},
		Store: StoreConfig{Driver: "sqlite", Retention: 30 * 24 * time.Hour, Lease: 5 * time.Second},
		Conversation: ConversationConfig{
			InactivityTimeout: 30 * time.Minute,
			RetryInitial:      500 * time.Millisecond,
			RetryMax:          time.Minute,
			GiveUpAfter:       time.Hour,
			CustomerRate:      500 * time.Millisecond,
			CustomerBurst:     20,
			MaxOpen:           1000,
			MaxAgentLine:      16 << 10,
			ContextLines:      5,
			ReopenWindow:      time.Minute,
			OutboxSweep:       10 * time.Second,
		},
		Notices: DefaultNotices(),
	}
}

// LoadConfig reads and checks a configuration file. It returns every problem
// it finds, joined, each a *ConfigError naming its key path. Adapter blocks
// are only split out here; CheckUnknown reports their unknown keys once the
// adapters have decoded them.
func LoadConfig(path string) (*Config, error) {
	return LoadConfigWith(path, ExpanderFor(path))
}

// LoadConfigWith is LoadConfig with a chosen Expander.
func LoadConfigWith(path string, x Expander) (*Config, error) {
	data, err := ReadFileBounded(path, maxConfigBytes)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(data, x)
}

// Bounds on operator input: a configuration is a few KiB; a file or a
// nesting this far beyond that is a mistake, and the TOML decoder's cost
// grows with the square of the nesting.
const (
	maxConfigBytes = 1 << 20
	maxConfigDepth = 16
	maxSecretBytes = 64 << 10
)

// ReadFileBounded reads a regular file of at most limit bytes. A device
// (/dev/zero), a FIFO or a larger file is refused before it is read: every
// file the configuration names (secrets, CA bundles) is read this way, so
// that no path an operator writes can exhaust memory.
func ReadFileBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s is %d bytes; at most %d are read", path, st.Size(), limit)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err == nil && int64(len(b)) > limit {
		err = fmt.Errorf("%s grew past %d bytes while read", path, limit)
	}
	return b, err
}

// checkNesting refuses configuration text whose brackets and braces nest
// deeper than maxConfigDepth outside strings and comments.
func checkNesting(data []byte) error {
	depth, line := 0, 1
	for i := 0; i < len(data); i++ {
		switch b := data[i]; b {
		case '\n':
			line++
		case '#':
			for i < len(data) && data[i] != '\n' {
				i++
			}
			line++
		case '"', '\'':
			i = skipString(data, i)
		case '[', '{':
			if depth++; depth > maxConfigDepth {
				return &ConfigError{Path: "(file)", Msg: fmt.Sprintf("line %d: arrays and tables nest deeper than %d levels", line, maxConfigDepth)}
			}
		case ']', '}':
			depth = max(depth-1, 0)
		}
	}
	return nil
}

// skipString returns the index of the last byte of the TOML string that
// starts at data[i] (basic or literal, single- or multi-line).
func skipString(data []byte, i int) int {
	q := data[i]
	if i+2 < len(data) && data[i+1] == q && data[i+2] == q { // multi-line
		end := bytes.Index(data[i+3:], []byte{q, q, q})
		if end < 0 {
			return len(data) - 1
		}
		return i + 3 + end + 2
	}
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			if q == '"' {
				j++
			}
		case q, '\n':
			return j
		}
	}
	return len(data) - 1
}

// ExpanderFor is the Expander for a configuration file: the process
// environment, and X_file paths relative to $CREDENTIALS_DIRECTORY, else to
// the file's own directory.
func ExpanderFor(path string) Expander {
	credDir := os.Getenv("CREDENTIALS_DIRECTORY")
	if credDir == "" {
		credDir = filepath.Dir(path)
	}
	return Expander{Getenv: os.LookupEnv, CredentialsDir: credDir}
}

// ParseConfig parses configuration text; see LoadConfig.
func ParseConfig(data []byte, x Expander) (*Config, error) {
	if len(data) > maxConfigBytes {
		return nil, &ConfigError{Path: "(file)", Msg: fmt.Sprintf("is %d bytes; at most %d", len(data), maxConfigBytes)}
	}
	if err := checkNesting(data); err != nil {
		return nil, err
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, &ConfigError{Path: "(file)", Msg: err.Error()}
	}
	var errs []error
	x.expandTable("", raw, &errs)
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(raw); err != nil {
		return nil, fmt.Errorf("re-encode config: %w", err)
	}
	cfg := defaultConfig()
	var top map[string]toml.Primitive
	md, err := toml.Decode(buf.String(), &top)
	if err != nil {
		return nil, fmt.Errorf("decode config: %w", err)
	}
	cfg.md = md
	errs = append(errs, cfg.decodeSections(top)...)
	errs = append(errs, cfg.validate()...)
	if len(errs) > 0 {
		return &cfg, errors.Join(errs...)
	}
	return &cfg, nil
}

func (c *Config) decodeSections(top map[string]toml.Primitive) []error {
	sections := map[string]any{
		"daemon": &c.Daemon, "log": &c.Log, "http": &c.HTTP, "store": &c.Store,
		"conversation": &c.Conversation, "notices": &c.Notices, "routes": &c.Routes,
	}
	var errs []error
	for _, name := range sortedKeys(top) {
		switch name {
		case "channels", "vendors":
			insts, err := c.instances(name, top[name])
			errs = append(errs, err...)
			if name == "channels" {
				c.Channels = insts
			} else {
				c.Vendors = insts
			}
			continue
		}
		dst, ok := sections[name]
		if !ok {
			// A table is reported by CheckUnknown; a bare key above the first
			// [table] is marked decoded by the split into sections, so it would
			// pass unseen while the operator thinks it set something.
			if t := c.md.Type(name); t != "Hash" && t != "ArrayHash" {
				errs = append(errs, &ConfigError{Path: name,
					Msg: "unknown key: keys above the first [table] belong to no section (move it under its [table])"})
			}
			continue
		}
		errs = append(errs, decodeTable(c.md, top[name], dst, name)...)
	}
	return errs
}

// instances splits [channels.KIND.NAME] (or vendors) blocks.
func (c *Config) instances(section string, p toml.Primitive) ([]Instance, []error) {
	var kinds map[string]map[string]toml.Primitive
	if err := c.md.PrimitiveDecode(p, &kinds); err != nil {
		return nil, []error{&ConfigError{Path: section, Msg: "must hold tables like [" + section + ".KIND.NAME]"}}
	}
	var out []Instance
	for _, kind := range sortedKeys(kinds) {
		for _, name := range sortedKeys(kinds[kind]) {
			prim := kinds[kind][name]
			path := section + "." + kind + "." + name
			decode := func(v any) error { return errors.Join(decodeTable(c.md, prim, v, path)...) }
			out = append(out, NewInstance(path, kind, name, decode))
		}
	}
	return out, nil
}

func (c *Config) validate() []error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &ConfigError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		bad("log.format", "must be json or console, not %q", c.Log.Format)
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		bad("http.listen", "must be host:port: %v", err)
	}
	if c.HTTP.PublicURL != "" {
		if u, err := url.Parse(c.HTTP.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("http.public_url", "must be an absolute http(s) URL, not %q", c.HTTP.PublicURL)
		}
	} else if len(c.Channels) > 0 {
		bad("http.public_url", "is required: remote services call and sign this URL")
	}
	if c.HTTP.AdminListen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.AdminListen); err != nil {
			bad("http.admin_listen", "must be host:port, or \"\" for none: %v", err)
		} else if c.HTTP.AdminListen == c.HTTP.Listen {
			bad("http.admin_listen", "must differ from http.listen: the public listener must not serve /metrics")
		}
	}
	errs = append(errs, c.HTTP.validateAdminAuth()...)
	if c.HTTP.MaxBodyBytes <= 0 {
		bad("http.max_body_bytes", "must be positive")
	}
	if c.HTTP.MaxConnections <= 0 {
		bad("http.max_connections", "must be positive")
	}
	if c.HTTP.MaxInflight <= 0 {
		bad("http.max_inflight", "must be positive")
	}
	if c.HTTP.AdminPprof && c.HTTP.AdminListen == "" {
		bad("http.admin_pprof", "needs http.admin_listen: profiles are served there only")
	}
	if c.Store.Retention < 0 {
		bad("store.retention", "must not be negative (0 keeps everything)")
	}
	if c.Store.Driver != "sqlite" && c.Store.Driver != "postgres" {
		bad("store.driver", "must be sqlite or postgres, not %q", c.Store.Driver)
	}
	if c.Store.Lease < time.Second {
		bad("store.lease", "must be at least 1s")
	}
	if c.Store.Driver == "postgres" && !validInstanceID(c.Instance()) {
		bad("daemon.instance_id", "must be 1 to 63 letters, digits, '.', '_' or '-' when instances share a PostgreSQL store, not %q", c.Instance())
	}
	if c.Daemon.ShutdownTimeout <= 0 {
		bad("daemon.shutdown_timeout", "must be positive")
	}
	if c.Daemon.ReadyWait < 0 {
		bad("daemon.ready_wait", "must not be negative")
	}
	errs = append(errs, c.Conversation.validate()...)
	errs = append(errs, c.Notices.validate()...)
	errs = append(errs, c.validateRoutes()...)
	return errs
}

func (cc ConversationConfig) validate() []error {
	var errs []error
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"inactivity_timeout", cc.InactivityTimeout}, {"retry_initial", cc.RetryInitial},
		{"retry_max", cc.RetryMax}, {"give_up_after", cc.GiveUpAfter},
		{"reopen_window", cc.ReopenWindow}, {"outbox_sweep", cc.OutboxSweep},
	} {
		if d.v <= 0 {
			errs = append(errs, &ConfigError{Path: "conversation." + d.key, Msg: "must be a positive duration like \"30s\""})
		}
	}
	if cc.RetryMax < cc.RetryInitial {
		errs = append(errs, &ConfigError{Path: "conversation.retry_max", Msg: "must not be less than retry_initial"})
	}
	bad := func(key, msg string) { errs = append(errs, &ConfigError{Path: "conversation." + key, Msg: msg}) }
	if cc.CustomerRate < 0 {
		bad("customer_rate", `must not be negative ("0s" for no limit)`)
	}
	if cc.CustomerBurst < 1 {
		bad("customer_burst", "must be at least 1")
	}
	if cc.MaxOpen < 0 {
		bad("max_open", "must not be negative (0 for no cap)")
	}
	if cc.MaxAgentLine < 256 || cc.MaxAgentLine > 1<<20 {
		bad("max_agent_line", "must be between 256 and 1048576 bytes")
	}
	if cc.ContextLines < 0 || cc.ContextLines > 50 {
		bad("context_lines", "must be between 0 and 50")
	}
	return errs
}

func (c *Config) validateRoutes() []error {
	has := func(insts []Instance, name string) bool {
		for _, i := range insts {
			if i.FullName() == name {
				return true
			}
		}
		return false
	}
	var errs []error
	routed := map[string]bool{}
	for i, r := range c.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Channel == "":
			errs = append(errs, &ConfigError{Path: path + ".channel", Msg: "is required"})
		case !has(c.Channels, r.Channel):
			errs = append(errs, &ConfigError{Path: path + ".channel", Msg: fmt.Sprintf("names %q, which is not a configured channel", r.Channel)})
		}
		switch {
		case r.Vendor == "":
			errs = append(errs, &ConfigError{Path: path + ".vendor", Msg: "is required"})
		case !has(c.Vendors, r.Vendor):
			errs = append(errs, &ConfigError{Path: path + ".vendor", Msg: fmt.Sprintf("names %q, which is not a configured vendor", r.Vendor)})
		}
		routed[r.Channel] = true
	}
	for _, ch := range c.Channels {
		if !routed[ch.FullName()] {
			errs = append(errs, &ConfigError{Path: ch.Path, Msg: "no route names this channel, so its customers could not reach anyone"})
		}
	}
	return errs
}

// VendorFor returns the vendor that conversations on channel go to.
func (c *Config) VendorFor(channel string) (string, bool) {
	for _, r := range c.Routes {
		if r.Channel == channel {
			return r.Vendor, true
		}
	}
	return "", false
}

// CheckUnknown reports every key that nothing decoded. Call it after every
// adapter's Build has decoded its block.
func (c *Config) CheckUnknown() []error {
	var errs []error
	for _, k := range c.md.Undecoded() {
		errs = append(errs, &ConfigError{Path: k.String(), Msg: "unknown key"})
	}
	return errs
}

// StatePath returns the state directory: $STATE_DIRECTORY (systemd) wins.
func (c *Config) StatePath() string {
	if d := os.Getenv("STATE_DIRECTORY"); d != "" {
		// systemd may pass several, colon-separated; ours is the first.
		return strings.Split(d, ":")[0]
	}
	return c.Daemon.StateDir
}

// decodeTable decodes the table p into dst, a pointer to a struct with toml
// tags. The toml package stops at the first bad value, so when decoding fails
// the fields are decoded again one at a time, to report every bad key with
// its own path.
func decodeTable(md toml.MetaData, p toml.Primitive, dst any, path string) []error {
	numbers := numberDurations(md, reflect.TypeOf(dst), path)
	err := md.PrimitiveDecode(p, dst)
	if err == nil {
		return numbers
	}
	whole := []error{&ConfigError{Path: path, Msg: cleanTOMLError(err)}}
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		return whole
	}
	var errs []error
	for _, f := range reflect.VisibleFields(rv.Elem().Type()) {
		key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if key == "" || key == "-" || !f.IsExported() || f.Anonymous || len(f.Index) > 1 {
			continue
		}
		if reported(numbers, path+"."+key) {
			continue
		}
		one := reflect.New(reflect.StructOf([]reflect.StructField{{Name: f.Name, Type: f.Type, Tag: f.Tag}}))
		if err := md.PrimitiveDecode(p, one.Interface()); err != nil {
			errs = append(errs, &ConfigError{Path: path + "." + key, Msg: cleanTOMLError(err)})
			continue
		}
		// Keep the good values, so that validation afterwards judges what the
		// file says, not a table the failed decode left half filled.
		if md.IsDefined(append(strings.Split(path, "."), key)...) {
			rv.Elem().FieldByIndex(f.Index).Set(one.Elem().Field(0))
		}
	}
	errs = append(numbers, errs...)
	if len(errs) == 0 {
		return whole
	}
	return errs
}

// numberDurations reports every time.Duration key of t (a pointer to a
// struct, nested tables included) that the file gives as a number: the TOML
// library would read 30 as 30 nanoseconds, which nobody means.
func numberDurations(md toml.MetaData, t reflect.Type, path string) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var errs []error
	for _, f := range reflect.VisibleFields(t) {
		key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if key == "" || key == "-" || !f.IsExported() || f.Anonymous || len(f.Index) > 1 {
			continue
		}
		keys := append(strings.Split(path, "."), key)
		switch {
		case f.Type == reflect.TypeFor[time.Duration]():
			if kind := md.Type(keys...); kind == "Integer" || kind == "Float" {
				errs = append(errs, &ConfigError{Path: path + "." + key,
					Msg: `must be a duration string like "30s" or "500ms", not a bare number`})
			}
		case f.Type.Kind() == reflect.Struct && md.IsDefined(keys...):
			errs = append(errs, numberDurations(md, f.Type, path+"."+key)...)
		}
	}
	return errs
}

// reported reports whether errs has a problem at path.
func reported(errs []error, path string) bool {
	for _, e := range errs {
		if ce, ok := e.(*ConfigError); ok && ce.Path == path {
			return true
		}
	}
	return false
}

var tomlLineRE = regexp.MustCompile(`^toml: (line \d+ \(last key "[^"]*"\): )?`)

// cleanTOMLError drops line numbers, which refer to the re-encoded text and
// would mislead; the key path says where.
func cleanTOMLError(err error) string {
	return tomlLineRE.ReplaceAllString(err.Error(), "")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// validateAdminAuth refuses an admin listener off loopback without a
// token: the operator API reads customers' messages and ends their chats,
// so it is refused rather than warned about, since a warning in a log
// nobody reads leaves it open.
func (h HTTPConfig) validateAdminAuth() []error {
	var errs []error
	if n := len(h.AdminToken.Reveal()); n > 0 && n < minAdminToken {
		errs = append(errs, &ConfigError{Path: "http.admin_token", Msg: fmt.Sprintf("must be at least %d characters (it is %d)", minAdminToken, n)})
	}
	if h.AdminListen == "" || !h.AdminToken.Empty() {
		return errs
	}
	host, _, err := net.SplitHostPort(h.AdminListen)
	if err == nil && !loopbackHost(host) {
		errs = append(errs, &ConfigError{Path: "http.admin_listen",
			Msg: fmt.Sprintf("%q is not a loopback address: set http.admin_token (or admin_token_file) so that the admin API asks for it", h.AdminListen)})
	}
	return errs
}

// loopbackHost reports whether host (of host:port) binds loopback only. An
// empty host binds every interface; a name other than localhost may
// resolve anywhere, so it counts as not loopback.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
