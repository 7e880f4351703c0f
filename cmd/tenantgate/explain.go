package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tenantgate/tenantgate/internal/analysis"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/identity"
)

// snapshotFlags are the source flags the analysis commands share with check.
type snapshotFlags struct {
	dirs engine.Dirs
	bf   bundleFlags
	// evaluator is set by registerEvaluator: the sweeps (access, who-can)
	// make thousands of decisions, so they take serve's choice of evaluator;
	// explain makes one, on OPA's evaluator (its explain rule needs it).
	evaluator *string
}

func (f *snapshotFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dirs.Policies, "policies", "policies", "directory of .rego policies")
	fs.StringVar(&f.dirs.Data, "data", "data", "directory of tenant data")
	f.bf.register(fs, false)
}

func (f *snapshotFlags) registerEvaluator(fs *flag.FlagSet) {
	f.evaluator = evaluatorFlag(fs)
}

// evaluatorFlag is serve's --evaluator, for the commands that sweep.
func evaluatorFlag(fs *flag.FlagSet) *string {
	return fs.String("evaluator", engine.DefaultEvaluator(), "ir (OPA's compiled plan of the policy: ~10x less CPU per decision; "+
		"used only when a build-time self-check finds it deciding exactly as OPA) or rego (OPA's own evaluator)")
}

// snapshotBuilder builds the sweeps' snapshots with the evaluator asked for.
func snapshotBuilder(evaluator string, stderr io.Writer) (*engine.Builder, error) {
	if !engine.ValidEvaluator(evaluator) {
		fmt.Fprintf(stderr, "--evaluator %q: want ir or rego\n", evaluator)
		return nil, exitError{2}
	}
	return &engine.Builder{Evaluator: evaluator, Logger: warnLogger(stderr)}, nil
}

// build loads and validates a snapshot; ident nil: no token verifier.
func (f *snapshotFlags) build(ctx context.Context, fs *flag.FlagSet, stderr io.Writer, ident *identity.Config) (*engine.Snapshot, error) {
	var src engine.Source = f.dirs
	if b, err := f.bf.source(fs, warnLogger(stderr)); err != nil {
		return nil, err
	} else if b != nil {
		src = b
	}
	if f.evaluator == nil {
		return engine.Build(ctx, src, ident)
	}
	b, err := snapshotBuilder(*f.evaluator, stderr)
	if err != nil {
		return nil, err
	}
	return b.Build(ctx, src, ident)
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func explain(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("explain", "Explain one request: every row of the policy's decision order with pass, fail or\n"+
		"not reached, the facts the rows read, then the decision and its headers. The rows come\n"+
		"from the policy's explain rule, evaluated on the input the decision was made from.\n"+
		"Exit status 0 on allow, 3 on deny.", stderr)
	var sf snapshotFlags
	sf.register(fs)
	var idf identityFlags
	idf.register(fs)
	user := fs.String("user", "", "user id (the JWT subject), decided as after a valid token")
	token := fs.String("token", "", "a JWT to verify instead of --user (needs --jwt-hs256-secret-file or --jwks-file)")
	method := fs.String("method", "GET", "request method")
	path := fs.String("path", "", "request path, as sent (percent-encoded, query allowed)")
	asJSON := fs.Bool("json", false, "print the explanation as JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *path == "":
		fmt.Fprintln(stderr, "explain: --path is required (e.g. --path /api/v1/customers/contoso/vbr-jobs)")
		return exitError{2}
	case (*user == "") == (*token == ""):
		fmt.Fprintln(stderr, "explain: give exactly one of --user (e.g. --user bob@contoso.example) and --token")
		return exitError{2}
	case *token != "" && len(idf.files()) == 0:
		fmt.Fprintln(stderr, "explain: --token needs the keys to verify it: --jwt-hs256-secret-file or --jwks-file")
		return exitError{2}
	}
	var ident *identity.Config
	if *token != "" {
		c := idf.config()
		ident = &c
	}
	ctx := context.Background()
	snap, err := sf.build(ctx, fs, stderr, ident)
	if err != nil {
		return err
	}
	sub, tokenErr := *user, ""
	if *token != "" {
		if s, err := snap.Verifier.Subject("Bearer "+*token, time.Now()); err != nil {
			tokenErr = err.Error()
		} else {
			sub = s
		}
	}
	e, err := analysis.Explain(ctx, snap, sub, engine.Request{Method: *method, Path: *path})
	if err != nil {
		return err
	}
	e.Token = tokenErr
	if *asJSON {
		writeJSON(stdout, e)
	} else {
		e.WriteText(stdout)
	}
	if !e.Allowed {
		return exitError{3}
	}
	return nil
}
