package soak

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// `go test ./internal/devtools/soak` runs the 5-second soak that is part of
// `make test`; `make soak` runs it longer (-soak=60s, SOAK=10m).
var (
	soakFor      = flag.Duration("soak", 5*time.Second, "how long TestSoak runs")
	soakWorkers  = flag.Int("soak.workers", 8, "concurrent gRPC callers")
	soakDebounce = flag.Duration("soak.debounce", 20*time.Millisecond, "the server's reload debounce")
)

func TestSoak(t *testing.T) {
	rep, err := Run(context.Background(), Options{
		Duration: *soakFor, Workers: *soakWorkers, Debounce: *soakDebounce,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep.String())
	for _, ex := range rep.Examples {
		t.Log(ex)
	}
	if rep.Errors != 0 || rep.Mismatches != 0 {
		t.Errorf("%d RPC errors and %d mismatches, want none", rep.Errors, rep.Mismatches)
	}
	if rep.Requests == 0 {
		t.Error("no request was answered")
	}
	if !rep.FinalOK {
		t.Error("the last version written never came into force")
	}
	// Both versions must have served, or the run proved nothing about
	// flipping. Each flip is 100 ms apart and reloads take a few ms, so
	// over 5 s both show up many times even on a loaded machine.
	if rep.AnswersA == 0 || rep.AnswersB == 0 {
		t.Errorf("answers only A gives: %d, only B: %d; want both served", rep.AnswersA, rep.AnswersB)
	}
	if rep.ReloadsOK < 2 {
		t.Errorf("%d successful reloads, want several", rep.ReloadsOK)
	}
	// An invalid version lasts one flip (100 ms); on a loaded machine a
	// reload can miss a few, never twenty.
	if rep.InvalidFlips >= 20 && rep.ReloadsFailed == 0 {
		t.Errorf("%d invalid versions written but no reload failed", rep.InvalidFlips)
	}
}

// TestVersionsDesign checks the assumptions the soak's verdict rests on:
// A and B load, the invalid version does not, no half-written tenants.yaml
// loads, enough requests tell A from B, and the invalid version's content
// would be caught if it were ever served.
func TestVersionsDesign(t *testing.T) {
	load := func(tenants string) error {
		_, err := tenant.Load([]tenant.File{
			{Name: "base.yaml", Content: []byte(baseYAML)},
			{Name: "tenants.yaml", Content: []byte(tenants)},
		})
		return err
	}
	for _, v := range []struct {
		name, content string
		valid         bool
	}{
		{"A", versionA, true},
		{"B", versionB, true},
		{"invalid", versionInvalid, false},
	} {
		t.Run(v.name, func(t *testing.T) {
			if err := load(v.content); (err == nil) != v.valid {
				t.Fatalf("load error %v, want valid=%t", err, v.valid)
			}
			// Every prefix a reader can see during an in-place write.
			full := strings.TrimRight(v.content, " \n")
			for n := 0; n < len(v.content); n++ {
				prefix := v.content[:n]
				if strings.TrimRight(prefix, " \n") == full {
					continue // the whole file, short of its final newline
				}
				if err := load(prefix); err == nil {
					t.Fatalf("the first %d bytes of version %s load as valid data:\n%s", n, v.name, prefix)
				}
			}
		})
	}

	ctx := context.Background()
	root := t.TempDir()
	pol := filepath.Join(root, "policies")
	if err := copyRegoDir("../../../policies", pol); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(root, "secret")
	if err := os.WriteFile(secret, []byte("soak-secret-soak-secret-soak-secret-0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	exps, err := expectations(ctx, root, pol, secret, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	differ := 0
	for _, e := range exps {
		if e.differ {
			differ++
			t.Logf("%-32s A %-20s B %s", e.req.name, e.aDecision, e.bDecision)
		}
	}
	if differ < len(exps)/2 {
		t.Errorf("only %d of %d requests tell A from B", differ, len(exps))
	}

	// The invalid version without its error (mallory) would allow hank:
	// neither A nor B does, so serving it would be a mismatch.
	mallory := "  mallory@contoso.example:\n    customer: contoso\n    role: company-owner\n"
	almost := strings.Replace(versionInvalid, mallory, "", 1)
	if almost == versionInvalid {
		t.Fatal("mallory's entry is no longer in versionInvalid; update this test")
	}
	dir := filepath.Join(root, "almost")
	if err := writeVersionDir(dir, almost); err != nil {
		t.Fatal(err)
	}
	s, err := engine.Build(ctx, engine.Dirs{Data: dir, Policies: pol}, nil)
	if err != nil {
		t.Fatalf("the invalid version minus mallory should load: %v", err)
	}
	for _, e := range exps {
		if e.req.name != "hank invalid only" {
			continue
		}
		res, err := s.DecideAs(ctx, e.req.user, &engine.Request{Method: e.req.method, Path: e.req.path})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Allowed || e.aDecision == "allowed" || e.bDecision == "allowed" {
			t.Errorf("hank: invalid-version answer %s, A %s, B %s; want allowed only in the invalid version",
				res.Reason, e.aDecision, e.bDecision)
		}
		return
	}
	t.Fatal("no request for hank")
}
