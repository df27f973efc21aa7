package connector

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Instance is one adapter block of the configuration: [channels.KIND.NAME]
// or [vendors.KIND.NAME].
type Instance struct {
	Kind string // "sms"
	Name string // "main"
	Path string // "channels.sms.main", for error messages
	// decode decodes the block into a struct with toml tags.
	decode func(v any) error
}

// NewInstance makes an Instance whose Decode calls decode; the config loader
// and tests use it.
func NewInstance(path, kind, name string, decode func(v any) error) Instance {
	return Instance{Kind: kind, Name: name, Path: path, decode: decode}
}

// FullName is the name routes use: "sms.main".
func (i Instance) FullName() string { return i.Kind + "." + i.Name }

// Decode decodes the block into v, a pointer to a struct with toml tags. The
// block has already had ${ENV} and X_file values expanded. Keys v does not
// have are reported by the loader afterwards; Decode reports every wrong type
// or bad value, each as a ConfigError with its key path, joined.
func (i Instance) Decode(v any) error {
	if i.decode == nil {
		return nil
	}
	err := i.decode(v)
	var ce *ConfigError
	if err == nil || errors.As(err, &ce) {
		return err
	}
	return &ConfigError{Path: i.Path, Msg: err.Error()}
}

// Errorf returns a ConfigError for key inside this block.
func (i Instance) Errorf(key, format string, args ...any) error {
	return &ConfigError{Path: i.Path + "." + key, Msg: fmt.Sprintf(format, args...)}
}

// ConfigError is one configuration problem at a key path.
type ConfigError struct {
	Path string // "channels.sms.main.from"
	Msg  string
	// Covers is a key whose own complaints this error makes redundant: an
	// unreadable auth_token_file already says why auth_token is missing.
	// Problems drops them.
	Covers string
}

func (e *ConfigError) Error() string { return e.Path + ": " + e.Msg }

// ChannelEnv is what a channel is built with.
type ChannelEnv struct {
	Instance Instance
	Logger   *zap.Logger
	Sink     ChannelSink
	// Conversations lists the channel's open conversations, for catch-up.
	Conversations ConversationLister
	// Progress keeps what earlier attempts at a message achieved.
	Progress SendProgress
	// OptOuts keeps which customers opted out of the channel's messages.
	OptOuts OptOuts
	// Receipts says where the channel's stored customer messages end.
	Receipts Receipts
	// Metrics registers the channel's own metrics on the daemon's registry,
	// each series labelled adapter="<the channel's name>".
	Metrics prometheus.Registerer
	// PublicURL is http.public_url without a trailing slash: the base of the URLs
	// that remote services call and sign.
	PublicURL string
}

// VendorEnv is what a vendor is built with.
type VendorEnv struct {
	Instance Instance
	Logger   *zap.Logger
	Sink     EventSink
	// Outbound takes messages the vendor starts itself (registerConnector).
	Outbound OutboundSink
	// Progress keeps what earlier attempts at a message achieved.
	Progress SendProgress
	// Metrics registers the vendor's own metrics on the daemon's registry,
	// each series labelled adapter="<the vendor's name>".
	Metrics prometheus.Registerer
}

// ChannelKind builds channel instances of one kind. Build decodes and
// validates the instance's block (returning every problem, joined with
// errors.Join, as ConfigErrors) and constructs the channel without connecting
// anything.
type ChannelKind struct {
	Kind  string
	Build func(env ChannelEnv) (Channel, error)
	// Defaults, when set, returns a pointer to a new config struct of the
	// kind (toml tags on its fields) holding every default. Tests use it to
	// hold config.example.toml to the code's defaults.
	Defaults func() any
}

// VendorKind builds vendor instances of one kind; see ChannelKind.
type VendorKind struct {
	Kind     string
	Build    func(env VendorEnv) (Vendor, error)
	Defaults func() any // see ChannelKind.Defaults
}

// NewChannelKind makes a ChannelKind from a constructor that returns its
// concrete type (a failed build never reaches the core as a typed nil) and
// the kind's Defaults.
func NewChannelKind[T Channel](kind string, build func(ChannelEnv) (T, error), defaults func() any) ChannelKind {
	return ChannelKind{Kind: kind, Defaults: defaults, Build: func(env ChannelEnv) (Channel, error) {
		ch, err := build(env)
		if err != nil {
			return nil, err
		}
		return ch, nil
	}}
}

// NewVendorKind is NewChannelKind for vendors.
func NewVendorKind[T Vendor](kind string, build func(VendorEnv) (T, error), defaults func() any) VendorKind {
	return VendorKind{Kind: kind, Defaults: defaults, Build: func(env VendorEnv) (Vendor, error) {
		v, err := build(env)
		if err != nil {
			return nil, err
		}
		return v, nil
	}}
}

// Problems lists the errors joined in err (errors.Join, nested at any depth)
// one by one, in order: a configuration check reports each on its own line.
func Problems(err error) []error {
	all := flatten(err)
	covered := map[string]bool{}
	for _, e := range all {
		if ce, ok := e.(*ConfigError); ok && ce.Covers != "" {
			covered[ce.Covers] = true
		}
	}
	out := all[:0]
	for _, e := range all {
		if ce, ok := e.(*ConfigError); ok && covered[ce.Path] {
			continue
		}
		out = append(out, e)
	}
	return out
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// DecodeBlock decodes inst's block into cfg, a pointer to a struct holding
// the defaults, and then runs check over the result: every adapter's config
// goes this way. It returns every problem joined, each a ConfigError at its
// key: the values that could not be decoded, and check's complaints about
// the others (a key whose value could not be decoded is not judged again,
// and a block that could not be decoded at all is not judged). check calls
// bad once per problem, naming the key inside the block.
func DecodeBlock(inst Instance, cfg any, check func(bad func(key, format string, args ...any))) error {
	decodeErr := inst.Decode(cfg)
	reported := map[string]bool{}
	for _, e := range Problems(decodeErr) {
		var ce *ConfigError
		if !errors.As(e, &ce) || ce.Path == inst.Path {
			return decodeErr // not about one key: judging the rest adds noise
		}
		reported[ce.Path] = true
	}
	errs := []error{decodeErr}
	check(func(key, format string, args ...any) {
		if !reported[inst.Path+"."+key] {
			errs = append(errs, inst.Errorf(key, format, args...))
		}
	})
	return errors.Join(errs...)
}
