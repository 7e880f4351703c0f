package main

import (
	"context"
	"fmt"
	"io"

	"github.com/tenantgate/tenantgate/internal/bundle"
	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

func validate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate", "Validate the tenant data (every error, with file, line, id and field) and compile the\n"+
		"policies. Exit status 1 when anything is wrong.", stderr)
	data := fs.String("data", "data", "directory of tenant data")
	pols := fs.String("policies", "policies", "directory of .rego policies (empty: skip)")
	var bf bundleFlags
	bf.register(fs, false)
	if err := parse(fs, args); err != nil {
		return err
	}
	if b, err := bf.source(fs, warnLogger(stderr)); err != nil {
		return err
	} else if b != nil {
		return validateBundle(b, bf.opts.Path, stdout, stderr)
	}
	failed := false
	d, err := tenant.LoadDir(*data)
	if err != nil {
		failed = true
		fmt.Fprintln(stderr, err)
	} else {
		fmt.Fprintf(stdout, "%s: ok (%d customers, %d users, %d files)\n", *data, len(d.Customers), len(d.Users), len(d.Files))
	}
	if *pols != "" {
		files, err := policy.ReadDir(*pols)
		if err == nil {
			_, err = policy.Compile(context.Background(), files)
		}
		if err != nil {
			failed = true
			fmt.Fprintln(stderr, err)
		} else {
			fmt.Fprintf(stdout, "%s: ok (%d modules)\n", *pols, len(files))
		}
	}
	if failed {
		return exitError{1}
	}
	return nil
}

// validateBundle reads a bundle as serve would (signature, data, policies)
// and says what it holds.
func validateBundle(b *bundle.Source, path string, stdout, stderr io.Writer) error {
	ctx := context.Background()
	c, err := b.Read(ctx)
	if err == nil {
		if _, err = policy.Compile(ctx, c.Policies); err != nil {
			err = fmt.Errorf("bundle %s: %w", path, err)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError{1}
	}
	sig := "signature verified"
	if !c.Verified {
		sig = "signature NOT verified"
	}
	fmt.Fprintf(stdout, "%s: ok (revision %s, %s, %d customers, %d users, %d data files, %d modules)\n",
		path, c.Revision, sig, len(c.Data.Customers), len(c.Data.Users), len(c.Data.Files), len(c.Policies))
	return nil
}
