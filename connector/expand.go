package connector

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
)

// Expander resolves indirect configuration values: a string "${NAME}" is read
// from the environment, and a key "X_file" is replaced by key "X" holding the
// file's content (one trailing newline dropped; a relative path is resolved
// against CredentialsDir, for systemd's LoadCredential=).
type Expander struct {
	Getenv         func(string) (string, bool)
	CredentialsDir string
	// Unset, when set, is told of a ${NAME} whose variable is unset, and the
	// reference is kept as it is instead of being an error. check-config uses
	// it to warn: it often runs where the secrets are not.
	Unset func(path, name string)
	// UnsetEmpty, with Unset, makes an unset variable's key an empty string
	// instead: run uses it so that a key the adapter does not use as
	// configured (a signing secret in Slack Socket Mode) stops nothing, while
	// one it needs fails its own check ("is required").
	UnsetEmpty bool
}

var envRefRE = regexp.MustCompile(`^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

func (x Expander) expandTable(path string, t map[string]any, errs *[]error) {
	for _, k := range sortedKeys(t) {
		kp := joinPath(path, k)
		switch v := t[k].(type) {
		case map[string]any:
			x.expandTable(kp, v, errs)
		case []map[string]any:
			for i, sub := range v {
				x.expandTable(fmt.Sprintf("%s[%d]", kp, i), sub, errs)
			}
		case []any:
			for i, e := range v {
				if s, ok := e.(string); ok {
					v[i] = x.expandString(fmt.Sprintf("%s[%d]", kp, i), s, errs)
				}
			}
		case string:
			if base, ok := strings.CutSuffix(k, "_file"); ok {
				x.readFileKey(t, path, base, k, v, errs)
				continue
			}
			t[k] = x.expandString(kp, v, errs)
		}
	}
}

func (x Expander) expandString(path, s string, errs *[]error) string {
	m := envRefRE.FindStringSubmatch(s)
	if m == nil {
		return s
	}
	if x.Getenv == nil {
		*errs = append(*errs, &ConfigError{Path: path, Msg: "environment variable " + m[1] + " is not set"})
		return ""
	}
	v, ok := x.Getenv(m[1])
	if !ok && x.Unset != nil {
		x.Unset(path, m[1])
		if x.UnsetEmpty {
			return ""
		}
		return s
	}
	if !ok {
		*errs = append(*errs, &ConfigError{Path: path, Msg: "environment variable " + m[1] + " is not set"})
	}
	return v
}

func (x Expander) readFileKey(t map[string]any, path, base, key, file string, errs *[]error) {
	kp := joinPath(path, key)
	if file == "" { // an empty X_file means X is not read from a file
		delete(t, key)
		return
	}
	if _, both := t[base]; both {
		*errs = append(*errs, &ConfigError{Path: kp, Msg: "set either " + base + " or " + key + ", not both"})
		return
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(x.CredentialsDir, file)
	}
	b, err := ReadFileBounded(file, maxSecretBytes)
	if err != nil {
		// Dropped, so that the key is not also "unknown"; and the error covers
		// the missing value's own complaints ("is required").
		delete(t, key)
		*errs = append(*errs, &ConfigError{Path: kp, Msg: "cannot read " + fileProblem(err),
			Covers: joinPath(path, base)})
		return
	}
	delete(t, key)
	t[base] = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
}

// fileProblem says what is wrong with a file, naming it (a path is not a
// secret; its content is).
func fileProblem(err error) string {
	return strings.TrimPrefix(err.Error(), "open ")
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
