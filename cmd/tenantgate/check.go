package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/tenantgate/tenantgate/internal/engine"
)

func check(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check", "Decide one request as the named user would be decided after a valid token, and print\n"+
		"the decision, the reason and the headers. Exit status 0 on allow, 3 on deny.", stderr)
	var dirs engine.Dirs
	fs.StringVar(&dirs.Policies, "policies", "policies", "directory of .rego policies")
	fs.StringVar(&dirs.Data, "data", "data", "directory of tenant data")
	user := fs.String("user", "", "user id (the JWT subject)")
	method := fs.String("method", "GET", "request method")
	path := fs.String("path", "", "request path, as sent (percent-encoded, query allowed)")
	asJSON := fs.Bool("json", false, "print the decision as JSON")
	var bf bundleFlags
	bf.register(fs, false)
	if err := parse(fs, args); err != nil {
		return err
	}
	// Without --user the answer would be the 401 every request without a
	// token gets: never what someone asking about a user meant.
	for _, r := range []struct{ flag, val, example string }{
		{"user", *user, "--user bob@contoso.example"},
		{"path", *path, "--path /api/v1/customers/contoso/vbr-jobs"},
	} {
		if r.val == "" {
			fmt.Fprintf(stderr, "check: --%s is required (e.g. %s)\n", r.flag, r.example)
			return exitError{2}
		}
	}
	var src engine.Source = dirs
	if b, err := bf.source(fs, warnLogger(stderr)); err != nil {
		return err
	} else if b != nil {
		src = b
	}
	ctx := context.Background()
	snap, err := engine.Build(ctx, src, nil)
	if err != nil {
		return err
	}
	res, err := snap.DecideAs(ctx, *user, &engine.Request{Method: *method, Path: *path})
	if err != nil {
		return err
	}
	if snap.Data.Users[*user] == nil {
		// The answer is right (unknown_user), but a typo is the likelier story.
		fmt.Fprintf(stderr, "note: %s is not a user in the data; ids are case-sensitive\n", *user)
	}
	if *asJSON {
		hdrs := map[string]string{}
		for _, h := range res.Headers {
			hdrs[h.Name] = h.Value
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"allowed": res.Allowed, "status": res.Status, "reason": res.Reason, "headers": hdrs})
	} else {
		verdict := "DENY"
		if res.Allowed {
			verdict = "ALLOW"
		}
		fmt.Fprintf(stdout, "%s %d %s\n", verdict, res.Status, res.Reason)
		for _, h := range res.Headers {
			fmt.Fprintf(stdout, "%s: %s\n", h.Name, h.Value)
		}
	}
	if !res.Allowed {
		return exitError{3}
	}
	return nil
}
