package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/connectord/connectord/connector"
)

// The operator commands: status, conversations, conversation, end and
// retry. Each reads http.admin_listen and http.admin_token from the
// daemon's configuration file, asks the running daemon's admin API, and
// prints a table (or, with -json, the API's JSON).

// maxAnswer bounds what an answer of the daemon is read to.
const maxAnswer = 64 << 20

// operatorFlags are the flags every operator command takes, and those of
// conversations.
type operatorFlags struct {
	config string
	json   bool
	list   url.Values // conversations' filters, as the API's parameters
}

func cmdOperator(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	f, positional, err := parseOperatorFlags(cmd, args, stderr)
	if err != nil {
		return err
	}
	wantArgs := 0
	if cmd == "conversation" || cmd == "end" || cmd == "retry" {
		wantArgs = 1
	}
	if len(positional) != wantArgs {
		fmt.Fprintf(stderr, "connectord %s: want %d argument(s), got %q\n", cmd, wantArgs, positional)
		return usageError{errors.New("wrong number of arguments")}
	}
	var id int64
	if wantArgs == 1 {
		if id, err = strconv.ParseInt(positional[0], 10, 64); err != nil || id <= 0 {
			fmt.Fprintf(stderr, "connectord %s: %q is not an id (a positive integer)\n", cmd, positional[0])
			return usageError{errors.New("bad id")}
		}
	}
	c, err := newOperatorClient(f.config)
	if err != nil {
		return err
	}
	path, method := operatorRequest(cmd, id, f.list)
	body, err := c.do(ctx, method, path)
	if err != nil {
		return err
	}
	if f.json {
		return printJSON(stdout, body)
	}
	return render(cmd, body, stdout)
}

// parseOperatorFlags parses flags before and after the positional
// arguments ("conversation 12 -json" as well as "conversation -json 12").
func parseOperatorFlags(cmd string, args []string, stderr io.Writer) (operatorFlags, []string, error) {
	f := operatorFlags{list: url.Values{}}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", defaultConfigPath(), "the daemon's configuration file (for http.admin_listen and http.admin_token)")
	fs.BoolVar(&f.json, "json", false, "print the API's JSON instead of a table")
	if cmd == "conversations" {
		addListFlags(fs, f.list)
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return f, nil, usageError{err}
		}
		if fs.NArg() == 0 {
			return f, positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// addListFlags defines conversations' filters; each one set becomes the
// API parameter of the same name (dashes for underscores).
func addListFlags(fs *flag.FlagSet, into url.Values) {
	for _, p := range []struct{ name, usage string }{
		{"state", "only this state: pending, queued, active, ended, or open (any but ended)"},
		{"channel", "only this channel instance (sms.main)"},
		{"vendor", "only this vendor instance (whoson.sales)"},
		{"older-than", "only conversations created longer ago than this (\"2h\")"},
		{"newer-than", "only conversations created within this (\"30m\")"},
		{"stuck-after", "with -stuck: a message waiting longer than this is stuck (default 1m)"},
		{"failed-within", "with -stuck: a message failed within this is stuck (default 1h)"},
		{"limit", "at most this many (default 100, at most 1000)"},
		{"before", "only ids below this (the next page: what the last one printed)"},
	} {
		param := strings.ReplaceAll(p.name, "-", "_")
		fs.Func(p.name, p.usage, func(v string) error { into.Set(param, v); return nil })
	}
	fs.BoolFunc("stuck", "only stuck conversations: a message waiting, or one failed recently", func(v string) error {
		into.Set("stuck", v)
		return nil
	})
}

// operatorRequest is the API request of a command.
func operatorRequest(cmd string, id int64, list url.Values) (path, method string) {
	n := strconv.FormatInt(id, 10)
	switch cmd {
	case "status":
		return "/api/v1/status", http.MethodGet
	case "conversations":
		if len(list) > 0 {
			return "/api/v1/conversations?" + list.Encode(), http.MethodGet
		}
		return "/api/v1/conversations", http.MethodGet
	case "conversation":
		return "/api/v1/conversations/" + n, http.MethodGet
	case "end":
		return "/api/v1/conversations/" + n + "/end", http.MethodPost
	}
	return "/api/v1/messages/" + n + "/retry", http.MethodPost
}

// operatorClient talks to a running daemon's admin API.
type operatorClient struct {
	base   string // http://host:port
	token  string
	config string // the configuration file it came from, for messages
	http   *http.Client
}

// newOperatorClient reads the admin address and token from the daemon's
// configuration file, with the loader run uses (environment variables and
// X_file keys resolved the same way). Only problems of [http] stop it: the
// running daemon has checked the rest, and an operator's shell often lacks
// the adapters' secrets.
func newOperatorClient(path string) (*operatorClient, error) {
	x := connector.ExpanderFor(path)
	x.Unset, x.UnsetEmpty = func(string, string) {}, true
	cfg, err := connector.LoadConfigWith(path, x)
	if cfg == nil {
		return nil, err
	}
	var problems []error
	for _, p := range connector.Problems(err) {
		var ce *connector.ConfigError
		if !errors.As(p, &ce) || strings.HasPrefix(ce.Path, "http.") || ce.Path == "(file)" {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s: %w", path, errors.Join(problems...))
	}
	base, err := adminBase(cfg.HTTP.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &operatorClient{base: base, token: cfg.HTTP.AdminToken.Reveal(), config: path,
		http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// adminBase is the URL of the admin listener: an address that binds every
// interface is reached on loopback.
func adminBase(listen string) (string, error) {
	if listen == "" {
		return "", errors.New("http.admin_listen is empty: the daemon serves no admin API")
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("http.admin_listen: %w", err)
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return "http://" + net.JoinHostPort(host, port), nil
}

// do makes one request and returns the answer's body; an answer that is
// not 2xx is an error with the API's own words.
func (c *operatorClient) do(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the daemon is not reachable at %s (http.admin_listen in %s); is it running? %w", c.base, c.config, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("read the daemon's answer: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return nil, fmt.Errorf("the daemon refused the admin token: %s must have the daemon's http.admin_token (or admin_token_file)", c.config)
	case resp.StatusCode/100 != 2:
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(cell(string(body), 200))
		}
		return nil, fmt.Errorf("%s (HTTP %d)", e.Error, resp.StatusCode)
	}
	return body, nil
}

// printJSON prints an answer indented, as the API gave it otherwise.
func printJSON(w io.Writer, body []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		return fmt.Errorf("the daemon's answer is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// defaultConfigPath is where -config points by default.
func defaultConfigPath() string {
	if p := os.Getenv("CONNECTORD_CONFIG"); p != "" {
		return p
	}
	return "/etc/connectord/config.toml"
}
