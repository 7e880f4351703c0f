package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/tenantgate/tenantgate/internal/buildinfo"
)

func version(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("version", "Print tenantgate's version, the VCS revision it was built from, and the Go and OPA\n"+
		"versions inside it (also in /v1/status and the tenantgate_build_info metric).", stderr)
	asJSON := fs.Bool("json", false, "print as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	info := buildinfo.Get()
	if *asJSON {
		return json.NewEncoder(stdout).Encode(info)
	}
	fmt.Fprintf(stdout, "tenantgate %s\nrevision:   %s\n", info.Version, info.Revision)
	if info.Time != "" {
		fmt.Fprintf(stdout, "built from: %s\n", info.Time)
	}
	fmt.Fprintf(stdout, "go:         %s\nopa:        %s\n", info.Go, info.OPA)
	return nil
}
