package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/engine"
)

// scrape reads /metrics through the real handler, as Prometheus would.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func has(t *testing.T, text, line string) {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return
		}
	}
	t.Errorf("/metrics lacks the line %q", line)
}

// TestZeroSeriesAndBuildInfo: every reason has a series from the start (a
// dashboard sees zeros, not gaps), and the build is labelled.
func TestZeroSeriesAndBuildInfo(t *testing.T) {
	text := scrape(t, New())
	has(t, text, `tenantgate_decisions_total{reason="allowed",result="allow"} 0`)
	for _, r := range decision.Reasons[1:] {
		has(t, text, `tenantgate_decisions_total{reason="`+r+`",result="deny"} 0`)
	}
	has(t, text, `tenantgate_reloads_total{result="failure"} 0`)
	// A test binary of a library package records no dependencies, so the
	// OPA version shows as "unknown" here; cmd/tenantgate's TestVersion
	// checks the real one.
	if !strings.Contains(text, "tenantgate_build_info{goversion=\"go1.") || !strings.Contains(text, `opa="`) || !strings.Contains(text, `revision="`) {
		t.Errorf("no tenantgate_build_info with the build's labels:\n%s", grep(text, "build_info"))
	}
}

// TestObserve: decisions are counted by result and reason (a dry-run allow
// as the allow that was sent), and a reload sets the snapshot's series.
func TestObserve(t *testing.T) {
	m := New()
	ok := engine.Result{Decision: decision.Decision{Allowed: true, Status: 200, Reason: decision.ReasonAllowed}}
	deny := engine.Result{Decision: decision.Decision{Status: 403, Reason: decision.ReasonRoleForbids}}
	for _, r := range []engine.Result{ok, ok, deny} {
		m.ObserveDecision(&engine.Request{}, &r, time.Millisecond)
	}
	s, err := engine.Build(context.Background(), engine.Dirs{Data: "../../data", Policies: "../../policies"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.ObserveReload(s, nil)
	text := scrape(t, m)
	has(t, text, `tenantgate_decisions_total{reason="allowed",result="allow"} 2`)
	has(t, text, `tenantgate_decisions_total{reason="role_forbids",result="deny"} 1`)
	has(t, text, `tenantgate_decision_duration_seconds_count 3`)
	has(t, text, `tenantgate_snapshot_info{revision="`+s.Revision+`"} 1`)
	has(t, text, `tenantgate_reload_failing 0`)
	has(t, text, `tenantgate_reloads_total{result="success"} 1`)
	ev := s.Evaluator()
	has(t, text, `tenantgate_evaluator_info{in_use="`+ev.InUse+`",requested="`+ev.Requested+`"} 1`)

	m.ObserveReload(nil, errors.New("users.yaml:3: bad"))
	text = scrape(t, m)
	has(t, text, `tenantgate_reload_failing 1`)
	has(t, text, `tenantgate_reloads_total{result="failure"} 1`)
	has(t, text, `tenantgate_snapshot_info{revision="`+s.Revision+`"} 1`) // the last good one still serves

	m.ObserveSources(map[string]engine.SourceStatus{
		engine.SourceData:     {OK: false, LastError: "bad"},
		engine.SourcePolicies: {OK: true},
	})
	text = scrape(t, m)
	has(t, text, `tenantgate_source_ok{source="data"} 0`)
	has(t, text, `tenantgate_source_ok{source="policies"} 1`)
	has(t, text, `tenantgate_source_reload_errors_total{source="data"} 1`)
}

func grep(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
