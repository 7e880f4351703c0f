// Command gen writes a generated tenant dataset (internal/devtools/tenantgen) to a
// directory, ready for `tenantgate serve --data DIR`, and optionally its
// request mix as JSON:
//
//	go run ./internal/devtools/tenantgen/cmd/gen -size large -out /tmp/large [-requests /tmp/large.json]
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "gen:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sizeName := fs.String("size", "small", "small (50 customers, 500 users), medium (2,000 / 20,000), large (20,000 / 200,000) or xl (100,000 / 1,000,000)")
	layout := fs.String("layout", "default", "default (channel, end-customers, four users files), two (customers.yaml, users.yaml) or split (one file per distributor and its subtree)")
	seed := fs.Uint64("seed", tenantgen.DefaultSeed, "generator seed: the same seed gives the same data and requests")
	out := fs.String("out", "", "directory to write the *.yaml data files into (required)")
	reqs := fs.String("requests", "", "file to write the request mix to, as a JSON array (optional)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("want -out DIR and no arguments")
	}
	size, err := tenantgen.SizeByName(*sizeName)
	if err != nil {
		return err
	}
	d, err := tenantgen.Generate(size, *seed)
	if err != nil {
		return err
	}
	if err := d.WriteLayout(*out, tenantgen.Layout(*layout)); err != nil {
		return err
	}
	if *reqs != "" {
		b, err := json.MarshalIndent(d.Requests, "", "  ")
		if err != nil {
			return fmt.Errorf("encode requests: %w", err)
		}
		if err := os.WriteFile(*reqs, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write requests: %w", err)
		}
	}
	fmt.Fprintf(stdout, "%s: %d customers, %d users in %s; %d requests, %.0f%% allowed\n",
		size.Name, len(d.Customers), len(d.Users), *out, len(d.Requests), 100*d.Allowed())
	return nil
}
