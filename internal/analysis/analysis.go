// Package analysis answers questions about a snapshot as a whole: why one
// request is decided as it is (explain), what a user may do (access), who
// may make a request (who-can) and what an edit changes (diff). Every answer
// is the policy's: each cell is one Snapshot.DecideAs, the single-decision
// entry point `tenantgate check` uses, and explain's rows come from the
// policy's explain rule. Go only chooses which requests to ask about.
package analysis

import (
	"context"
	"maps"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// Outcome is one decision as the analyses report it.
type Outcome struct {
	Allowed bool              `json:"allowed"`
	Reason  string            `json:"reason"`
	Headers map[string]string `json:"headers"`
}

func outcomeOf(d decision.Decision) Outcome {
	h := make(map[string]string, len(d.Headers))
	for _, x := range d.Headers {
		h[x.Name] = x.Value
	}
	return Outcome{Allowed: d.Allowed, Reason: d.Reason, Headers: h}
}

// Equal reports whether two outcomes are the same decision.
func (o Outcome) Equal(p Outcome) bool {
	return o.Allowed == p.Allowed && o.Reason == p.Reason && maps.Equal(o.Headers, p.Headers)
}

// job is one decision to make: a subject and a request.
type job struct {
	sub string
	req engine.Request
}

// decideAll makes every decision, on as many goroutines as there are CPUs:
// a snapshot answers concurrently, as it does when serving. progress, when
// set, is called with the number done so far (from any goroutine).
func decideAll(ctx context.Context, s *engine.Snapshot, jobs []job, progress func(done int)) ([]decision.Decision, error) {
	return decideOn(ctx, s, jobs, runtime.GOMAXPROCS(0), progress)
}

// decideOn is decideAll on at most workers goroutines (at least 64 jobs
// each): out[i] is always jobs[i]'s decision, whichever goroutine made it.
// TestParallelSweepEqualsSequential holds it to one goroutine's answers.
func decideOn(ctx context.Context, s *engine.Snapshot, jobs []job, workers int, progress func(done int)) ([]decision.Decision, error) {
	out := make([]decision.Decision, len(jobs))
	workers = min(max(1, workers), max(1, len(jobs)/64))
	var next, done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	const batch = 64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if ctx.Err() != nil {
					once.Do(func() { firstErr = ctx.Err() })
					return
				}
				start := int(next.Add(batch)) - batch
				if start >= len(jobs) {
					return
				}
				end := min(start+batch, len(jobs))
				for i := start; i < end; i++ {
					res, err := s.DecideAs(ctx, jobs[i].sub, &jobs[i].req)
					if err != nil {
						once.Do(func() { firstErr = err })
						return
					}
					out[i] = res.Decision
				}
				if progress != nil {
					progress(int(done.Add(int64(end - start))))
				}
			}
		}()
	}
	wg.Wait()
	return out, firstErr
}

// tree indexes the customers' children, for walking a subtree in a stable
// order (children by id).
type tree struct {
	data     *tenant.Data
	children map[string][]string
	roots    []string
}

func newTree(d *tenant.Data) *tree {
	t := &tree{data: d, children: make(map[string][]string, len(d.Customers))}
	for id, c := range d.Customers {
		if c.Parent == "" {
			t.roots = append(t.roots, id)
		} else {
			t.children[c.Parent] = append(t.children[c.Parent], id)
		}
	}
	sort.Strings(t.roots)
	for _, ch := range t.children {
		sort.Strings(ch)
	}
	return t
}

// subtree returns id and every customer below it, depth first; nil when id
// is unknown.
func (t *tree) subtree(id string) []string {
	if t.data.Customers[id] == nil {
		return nil
	}
	var out []string
	stack := []string{id}
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		out = append(out, c)
		ch := t.children[c]
		for i := len(ch) - 1; i >= 0; i-- {
			stack = append(stack, ch[i])
		}
	}
	return out
}

// resources is the policy's catalog, sorted by name: the columns of access.
func resources(s *engine.Snapshot) []string {
	return slices.Sorted(maps.Keys(s.Policy.Tables().Catalog))
}
