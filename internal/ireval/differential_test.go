package ireval

import (
	"context"
	"testing"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

func TestShippedPolicyIsAccepted(t *testing.T) {
	p := shippedPair(t)
	st := p.ir.Stats()
	t.Logf("plan: %d functions (%d constant), %d statements, builtins %v", st.Funcs, st.Constants, st.Statements, st.Builtins)
}

func loadDataset(tb testing.TB, d *tenantgen.Dataset) *tenant.Data {
	tb.Helper()
	data, err := tenant.Load(d.Files())
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// TestDifferentialBenchMixes: every request of every benchmark size's mix
// decides the same, term for term, under both evaluators.
func TestDifferentialBenchMixes(t *testing.T) {
	p := shippedPair(t)
	for _, size := range tenantgen.Sizes() {
		t.Run(size.Name, func(t *testing.T) {
			if size == tenantgen.Large && testing.Short() {
				t.Skip("large dataset in -short mode")
			}
			d, err := tenantgen.Shared(size)
			if err != nil {
				t.Fatal(err)
			}
			data := loadDataset(t, d)
			n, reasons := 0, map[string]int{}
			for _, r := range d.Requests {
				in := buildInput(data, p.isRes, r.User, r.Method, r.Path)
				mis, reason := p.diff(t, in)
				if mis != "" {
					t.Fatalf("%s %s as %q:\n  %s\ninput: %v", r.Method, r.Path, r.User, mis, in)
				}
				if want := `"` + r.Reason + `"`; reason != want {
					t.Errorf("%s %s as %q: reason %s, the generator expects %s", r.Method, r.Path, r.User, reason, want)
				}
				n++
				reasons[reason]++
			}
			t.Logf("%s: %d requests equal; reasons %v", size.Name, n, reasons)
		})
	}
}

// TestDifferentialRandomTrees: random tenant trees of random small sizes,
// with their request mixes.
func TestDifferentialRandomTrees(t *testing.T) {
	p := shippedPair(t)
	trees, n := 12, 0
	if testing.Short() || raceEnabled {
		trees = 4 // all 12 run in make test's pass without -race
	}
	for seed := uint64(1); seed <= uint64(trees); seed++ {
		size := tenantgen.Size{Name: "random", Customers: 10 + int(seed*37%90), Users: 0}
		size.Users = size.Customers * (2 + int(seed%4))
		d, err := tenantgen.Generate(size, seed*7919)
		if err != nil {
			t.Fatal(err)
		}
		data := loadDataset(t, d)
		for _, r := range d.Requests {
			in := buildInput(data, p.isRes, r.User, r.Method, r.Path)
			if mis, _ := p.diff(t, in); mis != "" {
				t.Fatalf("tree %d: %s %s as %q:\n  %s\ninput: %v", seed, r.Method, r.Path, r.User, mis, in)
			}
			n++
		}
	}
	t.Logf("%d trees, %d requests equal", trees, n)
}

func TestDeadlineFailsClosed(t *testing.T) {
	p := shippedPair(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	in := buildInput(&tenant.Data{}, p.isRes, "", "GET", "/api/v1/customers/x/users")
	if v, err := p.ir.Eval(ctx, in); err == nil {
		t.Fatalf("evaluation on a cancelled context gave %v, want an error", v)
	}
}

// TestConcurrentEvals: one evaluator shared by goroutines (as snapshots
// share it) gives each the answer it gives alone; run with -race.
func TestConcurrentEvals(t *testing.T) {
	p := shippedPair(t)
	d, err := tenantgen.Shared(tenantgen.Small)
	if err != nil {
		t.Fatal(err)
	}
	data := loadDataset(t, d)
	ctx := context.Background()
	want := make([]string, 200)
	for i := range want {
		r := d.Requests[i]
		v, err := p.ir.Eval(ctx, buildInput(data, p.isRes, r.User, r.Method, r.Path))
		want[i] = outcome(v, err)
	}
	errs := make(chan string, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for i := range want {
				r := d.Requests[(i+g*37)%len(want)]
				v, err := p.ir.Eval(ctx, buildInput(data, p.isRes, r.User, r.Method, r.Path))
				if got := outcome(v, err); got != want[(i+g*37)%len(want)] {
					errs <- got
					return
				}
			}
			errs <- ""
		}()
	}
	for range 4 {
		if e := <-errs; e != "" {
			t.Fatalf("a concurrent evaluation gave %s", e)
		}
	}
}
