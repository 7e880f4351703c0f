package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/tenantgate/tenantgate/internal/proxyconfig"
)

// configUsage lists the kinds from proxyconfig itself, so a new kind shows
// up here without an edit.
func configUsage() string {
	var b strings.Builder
	b.WriteString(`Usage: tenantgate config <kind> [flags] > FILE

Print a complete, ready-to-run configuration that puts tenantgate in front of an app: the very
output the end-to-end tests run through real nginx and Caddy, check against Envoy's own protos,
and cross-check for Istio and Kubernetes. Its first lines say how to run it.

Kinds:
`)
	for _, k := range proxyconfig.Kinds() {
		fmt.Fprintf(&b, "  %-11s %s\n", k.Name, k.Summary)
	}
	b.WriteString("\nRun 'tenantgate config <kind> -h' for a kind's flags.\n")
	return b.String()
}

// configCmd runs `tenantgate config KIND [flags]`.
func configCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, configUsage())
		return exitError{2}
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, configUsage())
		return exitError{0}
	}
	kind, ok := proxyconfig.Lookup(name)
	if !ok {
		fmt.Fprintf(stderr, "tenantgate config: unknown kind %q\n\n%s", name, configUsage())
		return exitError{2}
	}
	var p proxyconfig.Params
	fs := newFlags("config "+kind.Name, "Print a config for "+kind.Summary+", e.g.\n"+
		"  tenantgate config "+kind.Name+" > "+kind.File+"\n"+
		"The flags fill it; every one has a working default (tenantgate serve's addresses).", stderr)
	for _, prm := range kind.Params() {
		fs.StringVar(prm.Field(&p), prm.Flag, prm.Default, prm.Usage)
	}
	if err := otherKindsFlag(kind, args[1:], stderr); err != nil {
		return err
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	out, err := proxyconfig.Render(kind.Name, p)
	if err != nil {
		fmt.Fprintf(stderr, "tenantgate config %s: %v\n", kind.Name, err)
		return exitError{2}
	}
	_, err = stdout.Write(out)
	return err
}

// otherKindsFlag refuses a flag that belongs to other kinds only (--dir for
// caddy) with the kinds that take it: the flag package would call it
// undefined and guess a similar name, which is not what the user meant.
func otherKindsFlag(kind proxyconfig.Kind, args []string, stderr io.Writer) error {
	own := func(k proxyconfig.Kind, flag string) bool {
		return slices.ContainsFunc(k.Params(), func(p proxyconfig.Param) bool { return p.Flag == flag })
	}
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			continue
		}
		flag, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if own(kind, flag) {
			continue
		}
		var takers []string
		for _, k := range proxyconfig.Kinds() {
			if own(k, flag) {
				takers = append(takers, k.Name)
			}
		}
		if len(takers) > 0 {
			fmt.Fprintf(stderr, "tenantgate config %s: --%s is not a flag of %s (only of %s); run 'tenantgate config %s -h' for its flags\n",
				kind.Name, flag, kind.Name, strings.Join(takers, ", "), kind.Name)
			return exitError{2}
		}
	}
	return nil
}
