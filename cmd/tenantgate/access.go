package main

import (
	"context"
	"fmt"
	"io"

	"github.com/tenantgate/tenantgate/internal/analysis"
)

func access(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("access", "Print a user's effective permissions: for each customer the user reaches (and each\n"+
		"location or computer qualifier of its own), each catalog resource, GET and POST on the\n"+
		"collection, as the policy decides them. Customers are rows, grouped by the tree.", stderr)
	var sf snapshotFlags
	sf.register(fs)
	sf.registerEvaluator(fs)
	user := fs.String("user", "", "user id (the JWT subject)")
	customer := fs.String("customer", "", "only this customer and the customers below it")
	asJSON := fs.Bool("json", false, "print every cell as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *user == "" {
		fmt.Fprintln(stderr, "access: --user is required (e.g. --user bob@contoso.example)")
		return exitError{2}
	}
	ctx := context.Background()
	snap, err := sf.build(ctx, fs, stderr, nil)
	if err != nil {
		return err
	}
	a, err := analysis.UserAccess(ctx, snap, *user, analysis.AccessOptions{Under: *customer})
	if err != nil {
		return err
	}
	if *asJSON {
		writeJSON(stdout, a)
	} else {
		a.WriteText(stdout)
	}
	return nil
}
