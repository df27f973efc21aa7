package main

import (
	"encoding"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/connectord/connectord/connector"
)

// exampleFile is the configuration shipped as the reference of every key.
const exampleFile = "../../config.example.toml"

// configKey is one key of an adapter's config struct: its path inside the
// block (nested tables included) and its field's index.
type configKey struct {
	path  []string
	index []int
}

func (k configKey) String() string { return strings.Join(k.path, ".") }

// TestExampleCarriesDefaults holds config.example.toml to the code: for every
// adapter kind in registry() the example has a block of that kind, the block
// writes every key of the kind's config struct (nested tables included; X_file
// stands for X), it writes no key the struct lacks, and every key whose
// default is not the zero value is written with that default. Secrets and
// required values have zero defaults: the example shows a placeholder there.
func TestExampleCarriesDefaults(t *testing.T) {
	data, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		t.Fatalf("%s: %v", exampleFile, err)
	}
	anyEnv := func(string) (string, bool) { return "x", true }
	cfg, _ := connector.ParseConfig(data, connector.Expander{Getenv: anyEnv})
	if cfg == nil {
		t.Fatalf("%s does not load", exampleFile)
	}
	reg := registry()
	if len(reg.Channels) == 0 || len(reg.Vendors) == 0 {
		t.Fatal("registry() has no channel or no vendor kind")
	}
	for _, k := range reg.Channels {
		checkKind(t, raw, cfg.Channels, "channels", k.Kind, k.Defaults)
	}
	for _, k := range reg.Vendors {
		checkKind(t, raw, cfg.Vendors, "vendors", k.Kind, k.Defaults)
	}
}

// checkKind checks every [section.kind.NAME] block of the example.
func checkKind(t *testing.T, raw map[string]any, insts []connector.Instance, section, kind string, defaults func() any) {
	if defaults == nil {
		t.Errorf("%s kind %q has no Defaults: the example cannot be checked against it", section, kind)
		return
	}
	blocks, _ := table(raw, section, kind)
	if len(blocks) == 0 {
		t.Errorf("%s has no [%s.%s.NAME] block", exampleFile, section, kind)
		return
	}
	for _, inst := range insts {
		if inst.Kind != kind {
			continue
		}
		block, ok := blocks[inst.Name].(map[string]any)
		if !ok {
			t.Errorf("[%s] is not a table", inst.Path)
			continue
		}
		checkBlock(t, inst, block, defaults())
	}
}

// checkBlock checks one example block against def, a pointer to the kind's
// config struct holding its defaults.
func checkBlock(t *testing.T, inst connector.Instance, block map[string]any, def any) {
	typ := reflect.TypeOf(def).Elem()
	keys := configKeys(typ, nil)
	for _, k := range keys {
		if !written(block, k.path) {
			t.Errorf("[%s] lacks %s (default %s)", inst.Path, k, show(reflect.ValueOf(def).Elem().FieldByIndex(k.index)))
		}
	}
	for _, key := range unknownKeys(block, keys, nil) {
		t.Errorf("[%s] has %s, which the %s config does not know", inst.Path, key, inst.Kind)
	}
	got := reflect.New(typ)
	if err := inst.Decode(got.Interface()); err != nil {
		t.Errorf("[%s] does not decode: %v", inst.Path, err)
		return
	}
	for _, k := range keys {
		want := reflect.ValueOf(def).Elem().FieldByIndex(k.index)
		have := got.Elem().FieldByIndex(k.index)
		if !want.IsZero() && written(block, k.path) && !reflect.DeepEqual(want.Interface(), have.Interface()) {
			t.Errorf("[%s] %s = %s, but the code's default is %s", inst.Path, k, show(have), show(want))
		}
	}
}

// configKeys lists the toml keys of struct type typ under prefix; a field
// that is itself a struct (and not a value read from text) is a nested
// table, whose keys are listed instead.
func configKeys(typ reflect.Type, prefix []string) []configKey {
	var out []configKey
	for _, f := range reflect.VisibleFields(typ) {
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "" || name == "-" || !f.IsExported() || f.Anonymous || len(f.Index) > 1 {
			continue
		}
		path := append(slices.Clone(prefix), name)
		if isTable(f.Type) {
			for _, k := range configKeys(f.Type, path) {
				k.index = append(slices.Clone(f.Index), k.index...)
				out = append(out, k)
			}
			continue
		}
		out = append(out, configKey{path: path, index: f.Index})
	}
	return out
}

// isTable reports whether a field of type t is written as a TOML table of
// its own keys.
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

// unknownKeys lists the keys block writes that keys lacks: nested tables
// are walked, a map-valued key (channel_names = {...}) is one key, and X_file
// stands for X.
func unknownKeys(block map[string]any, keys []configKey, prefix []string) []string {
	var out []string
	for name, v := range block {
		path := append(slices.Clone(prefix), name)
		base, _ := strings.CutSuffix(name, "_file")
		switch sub, isMap := v.(map[string]any); {
		case hasKey(keys, path), hasKey(keys, append(slices.Clone(prefix), base)):
		case isMap && hasTable(keys, path):
			out = append(out, unknownKeys(sub, keys, path)...)
		default:
			out = append(out, strings.Join(path, "."))
		}
	}
	slices.Sort(out)
	return out
}

func hasKey(keys []configKey, path []string) bool {
	return slices.ContainsFunc(keys, func(k configKey) bool { return slices.Equal(k.path, path) })
}

// hasTable reports whether path is a nested table of keys.
func hasTable(keys []configKey, path []string) bool {
	return slices.ContainsFunc(keys, func(k configKey) bool {
		return len(k.path) > len(path) && slices.Equal(k.path[:len(path)], path)
	})
}

// written reports whether block writes the key at path, itself or as
// path_file.
func written(block map[string]any, path []string) bool {
	parent, ok := table(block, path[:len(path)-1]...)
	if !ok {
		return false
	}
	last := path[len(path)-1]
	_, plain := parent[last]
	_, file := parent[last+"_file"]
	return plain || file
}

// table walks m down the keys, each a nested table.
func table(m map[string]any, keys ...string) (map[string]any, bool) {
	for _, k := range keys {
		sub, ok := m[k].(map[string]any)
		if !ok {
			return nil, false
		}
		m = sub
	}
	return m, true
}

// show prints a config value for a message: a string quoted (a Secret as
// its placeholder), a duration like "1m0s".
func show(v reflect.Value) string {
	if v.Kind() == reflect.String {
		return fmt.Sprintf("%q", v.Interface())
	}
	return fmt.Sprintf("%v", v.Interface())
}
