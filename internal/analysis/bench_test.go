package analysis

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/devtools/tenantgen"
	"github.com/tenantgate/tenantgate/internal/engine"
)

// Benchmarks at the generated sizes (issue 13's targets are for large:
// explain < 1 s with the load, access for a distributor's owner < 5 s,
// who-can < 10 s, a one-user diff < 10 s). Load is BenchmarkBuild's figure
// in internal/engine; these measure the analysis on a built snapshot.
// Run: go test -run '^$' -bench . -benchtime 1x ./internal/analysis/

func benchSnapshot(b *testing.B, size tenantgen.Size) (*tenantgen.Dataset, *engine.Snapshot) {
	b.Helper()
	d, err := tenantgen.Shared(size)
	if err != nil {
		b.Fatal(err)
	}
	return d, build(b, d.Files())
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs op in b.Loop and also reports cpu-ns/op, the CPU time all
// goroutines spent per op: on a machine shared with other work the wall
// time (ns/op) of a parallel sweep says more about the load than about the
// sweep. Only the op runs meanwhile, so the process's time is the op's.
func measure(b *testing.B, op func() error) {
	b.Helper()
	start, n := cpuTime(b), 0
	for b.Loop() {
		if err := op(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(n), "cpu-ns/op")
}

func BenchmarkAnalysis(b *testing.B) {
	for _, size := range tenantgen.Sizes() {
		// Each size is built inside its own sub-benchmark, so -bench
		// 'Analysis/size=small' builds only the small tree.
		b.Run("size="+size.Name, func(b *testing.B) { benchAnalysis(b, size) })
	}
}

func benchAnalysis(b *testing.B, size tenantgen.Size) {
	ctx := context.Background()
	d, s := benchSnapshot(b, size)
	// The enabled owner highest in the tree (a distributor's at large):
	// the widest probe set.
	var owner, dist string
	depth := 99
	for _, u := range d.Users {
		c := s.Data.Customers[u.Customer]
		if u.Role == "company-owner" && !u.Disabled && len(c.Suspended) == 0 && len(c.Lineage) < depth {
			owner, dist, depth = u.ID, u.Customer, len(c.Lineage)
		}
	}
	if owner == "" {
		b.Fatal("no enabled owner")
	}
	b.Run("explain", func(b *testing.B) {
		measure(b, func() error {
			_, err := Explain(ctx, s, owner, engine.Request{Method: "POST", Path: "/api/v1/customers/" + dist + "/vbr-jobs"})
			return err
		})
	})
	b.Run("access-distributor-owner", func(b *testing.B) {
		measure(b, func() error {
			_, err := UserAccess(ctx, s, owner, AccessOptions{})
			return err
		})
	})
	b.Run("who-can", func(b *testing.B) {
		measure(b, func() error {
			_, err := UsersWhoCan(ctx, s, "GET", "/api/v1/customers/"+dist+"/vbr-jobs")
			return err
		})
	})
	b.Run("diff-one-user", func(b *testing.B) {
		edited := *d
		edited.Users = append([]tenantgen.User(nil), d.Users...)
		edited.Users[0].Disabled = !edited.Users[0].Disabled
		cur := build(b, edited.Files())
		measure(b, func() error {
			_, err := SnapshotDiff(ctx, s, cur, DiffOptions{})
			return err
		})
	})
}
