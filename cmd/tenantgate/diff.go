package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tenantgate/tenantgate/internal/analysis"
	"github.com/tenantgate/tenantgate/internal/engine"
)

func diff(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("diff", "Print the access changes between two versions of the tenant data and/or policies,\n"+
		"before the edit is saved or merged: per user, the requests it gains and loses, reason and\n"+
		"scope header changes, users added or removed, and totals. Both versions are validated.\n"+
		"Forms: --data OLD --data-new NEW; --policies OLD --policies-new NEW; or --git REV (the\n"+
		"--data and --policies directories as they are against as they were at REV).\n"+
		"Exit status 0 when nothing changes, 1 when something does, 2 on an error.", stderr)
	var old engine.Dirs
	fs.StringVar(&old.Data, "data", "data", "directory of tenant data (the old version, or the working tree's with --git)")
	fs.StringVar(&old.Policies, "policies", "policies", "directory of .rego policies (likewise)")
	dataNew := fs.String("data-new", "", "directory of the new tenant data (default: --data)")
	policiesNew := fs.String("policies-new", "", "directory of the new policies (default: --policies)")
	rev := fs.String("git", "", "compare the working tree's --data and --policies against those at this git revision")
	full := fs.Bool("full", false, "evaluate every user even when only the data changed (slower; the same answer)")
	asJSON := fs.Bool("json", false, "print the changes as JSON")
	evaluator := evaluatorFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	fail := func(err error) error {
		fmt.Fprintln(stderr, "tenantgate diff:", err)
		return exitError{2}
	}
	var oldSrc, newSrc engine.Source
	switch {
	case *rev != "" && (*dataNew != "" || *policiesNew != ""):
		fmt.Fprintln(stderr, "diff: --git compares the working tree with a revision: leave out --data-new and --policies-new")
		return exitError{2}
	case *rev != "":
		oldSrc = analysis.GitSource{Rev: *rev, Data: old.Data, Policies: old.Policies}
		newSrc = old
	case *dataNew == "" && *policiesNew == "":
		fmt.Fprintln(stderr, "diff: give the new version: --data-new DIR, --policies-new DIR, or --git REV")
		return exitError{2}
	default:
		cur := old
		if *dataNew != "" {
			cur.Data = *dataNew
		}
		if *policiesNew != "" {
			cur.Policies = *policiesNew
		}
		oldSrc, newSrc = old, cur
	}
	// One builder for both versions: when the policies are the same, the
	// IR evaluator is planned and self-checked once.
	bld, err := snapshotBuilder(*evaluator, stderr)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var before, after *engine.Snapshot
	errs := make(chan error, 2)
	go func() {
		var err error
		before, err = bld.Build(ctx, oldSrc, nil)
		errs <- err
	}()
	go func() {
		var err error
		after, err = bld.Build(ctx, newSrc, nil)
		errs <- err
	}()
	for range 2 {
		if err := <-errs; err != nil {
			return fail(err)
		}
	}
	opts := analysis.DiffOptions{Full: *full}
	if isTerminal(stderr) {
		opts.Progress = progressBar(stderr)
	}
	d, err := analysis.SnapshotDiff(ctx, before, after, opts)
	if err != nil {
		return fail(err)
	}
	if *asJSON {
		writeJSON(stdout, d)
	} else {
		d.WriteText(stdout)
	}
	if len(d.Changes) > 0 || len(d.Summary.UsersAdded) > 0 || len(d.Summary.UsersRemoved) > 0 {
		return exitError{1}
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws users done of total on one terminal line; only a
// sweep that takes a while (a policy edit evaluates every user) draws more
// than one step.
func progressBar(w io.Writer) func(done, total int) {
	return func(done, total int) {
		const width = 40
		n := width * done / max(total, 1)
		fmt.Fprintf(w, "\r[%s%s] %d/%d users", strings.Repeat("#", n), strings.Repeat(" ", width-n), done, total)
		if done >= total {
			fmt.Fprint(w, "\r\033[K")
		}
	}
}
