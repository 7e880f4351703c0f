package main

import (
	"context"
	"encoding/json"
	"io"

	"github.com/tenantgate/tenantgate/internal/policy"
)

func tables(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tables", "Print the customer-type x module table and the role x functionality table, read from\n"+
		"the policy (data.tenantgate.tables), in the seed documents' rows and columns.", stderr)
	pols := fs.String("policies", "policies", "directory of .rego policies")
	asJSON := fs.Bool("json", false, "print data.tenantgate.tables as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	files, err := policy.ReadDir(*pols)
	if err != nil {
		return err
	}
	p, err := policy.Compile(context.Background(), files)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(p.Tables())
	}
	return p.Tables().Print(stdout)
}
