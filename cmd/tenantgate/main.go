// Command tenantgate is a policy-as-code external authorizer for Envoy's
// ext_authz (gRPC or HTTP), nginx auth_request, Caddy forward_auth and
// Traefik ForwardAuth. The package holds flags, wiring and signals only: one
// file per subcommand (serve.go, validate.go, ...), the flag groups they share
// in flags.go, and the dispatch here.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

const usage = `tenantgate: a multi-tenant external authorizer for Envoy, nginx, Caddy and Traefik.

Usage:
  tenantgate serve    [flags]   serve ext_authz over gRPC and the HTTP mode, hot-reloading data and policies
  tenantgate validate [flags]   validate tenant data (and compile the policies); print every error; exit 1 on any
  tenantgate check    [flags]   decide one request for a named user, no token needed
  tenantgate explain  [flags]   explain one request: each row of the decision order, the facts, the decision
  tenantgate access   [flags]   a user's effective permissions over every customer and resource it reaches
  tenantgate who-can  [flags]   every user one request would be allowed for, and the others by reason
  tenantgate diff     [flags]   the access changes between two versions of data and/or policies (exit 1 on any)
  tenantgate tables   [flags]   print the customer-type and role tables from the policy itself
  tenantgate token    [flags]   mint an HS256 development token from the secret file
  tenantgate bundle build [flags] validate data and policies and pack them into a signed OPA bundle
  tenantgate config KIND [flags]  print a ready-to-run nginx, Caddy, Envoy, Istio or Kubernetes config
  tenantgate version  [flags]   print the version, VCS revision, Go and OPA versions

Run 'tenantgate <command> -h' for a command's flags, and 'tenantgate help' for the
reference topics (the data format, the decision order, proxies, operations...).
`

// exitError carries an exit code out of a subcommand.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "tenantgate:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{2}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(rest, stderr)
	case "validate":
		return validate(rest, stdout, stderr)
	case "check":
		return check(rest, stdout, stderr)
	case "explain":
		return explain(rest, stdout, stderr)
	case "access":
		return access(rest, stdout, stderr)
	case "who-can":
		return whoCan(rest, stdout, stderr)
	case "diff":
		return diff(rest, stdout, stderr)
	case "tables":
		return tables(rest, stdout, stderr)
	case "token":
		return token(rest, stdout, stderr)
	case "version":
		return version(rest, stdout, stderr)
	case "bundle":
		return bundleCmd(rest, stdout, stderr)
	case "config":
		return configCmd(rest, stdout, stderr)
	case "help":
		return help(rest, stdout, stderr)
	case "-h", "-help", "--help":
		return help(nil, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "tenantgate: unknown command %q\n\n%s", cmd, usage)
		return exitError{2}
	}
}

// newFlags returns a flag set whose -h prints a one-line summary first.
func newFlags(name, summary string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tenantgate %s [flags]\n\n%s\n\nFlags:\n", name, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags; -h is not an error (exit 0), a bad flag exits 2. A
// mistyped flag gets the flag package's one-line error and a hint, not the
// whole usage: with forty flags the error would scroll out of sight.
func parse(fs *flag.FlagSet, args []string) error {
	full := fs.Usage
	fs.Usage = func() {}
	err := fs.Parse(args)
	fs.Usage = full
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			full()
			return exitError{0}
		}
		if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
			if s := closestFlag(fs, strings.TrimPrefix(name, "-")); s != "" {
				fmt.Fprintf(fs.Output(), "did you mean --%s?\n", s)
			}
		}
		fmt.Fprintf(fs.Output(), "run 'tenantgate %s -h' for its flags\n", fs.Name())
		return exitError{2}
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return exitError{2}
	}
	return nil
}

// closestFlag is the defined flag nearest to a mistyped name.
func closestFlag(fs *flag.FlagSet, typed string) string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return closest(typed, names)
}

// closest is the name nearest to a mistyped one: one that starts with it,
// or within a third of its length in edits; "" when none is close. Ties go
// to the name that sorts first, so the hint is the same on every run.
func closest(typed string, names []string) string {
	best, bestDist := "", len(typed)/3+1
	for _, n := range names {
		d := editDistance(typed, n)
		if strings.HasPrefix(n, typed) && len(typed) >= 3 {
			d = 0
		}
		if d < bestDist || (d == bestDist && best != "" && n < best) {
			best, bestDist = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
}

// warnLogger is for the one-shot commands: warnings (an unverified bundle)
// only, on stderr.
func warnLogger(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
