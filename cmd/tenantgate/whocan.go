package main

import (
	"context"
	"fmt"
	"io"

	"github.com/tenantgate/tenantgate/internal/analysis"
)

func whoCan(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("who-can", "Decide one request for every user of the tenant data: print those allowed, with role,\n"+
		"customer and scope headers, and count the others by deny reason.", stderr)
	var sf snapshotFlags
	sf.register(fs)
	sf.registerEvaluator(fs)
	method := fs.String("method", "GET", "request method")
	path := fs.String("path", "", "request path, as sent (percent-encoded, query allowed)")
	asJSON := fs.Bool("json", false, "print as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *path == "" {
		fmt.Fprintln(stderr, "who-can: --path is required (e.g. --path /api/v1/customers/contoso/vbr-jobs)")
		return exitError{2}
	}
	ctx := context.Background()
	snap, err := sf.build(ctx, fs, stderr, nil)
	if err != nil {
		return err
	}
	w, err := analysis.UsersWhoCan(ctx, snap, *method, *path)
	if err != nil {
		return err
	}
	if *asJSON {
		writeJSON(stdout, w)
	} else {
		w.WriteText(stdout)
	}
	return nil
}
