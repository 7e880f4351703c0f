package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fault is one thing going wrong under a running server.
type fault struct {
	name    string
	inject  func(t *testing.T)
	want    string // what /v1/status and the logs must name
	restore func(t *testing.T)
}

// survive injects f and checks the promise of `tenantgate help reliability` (Faults): the last good
// snapshot keeps serving (probe keeps its answer), /v1/status and the logs
// say what is wrong, and once f is restored the server recovers to a clean
// status. probe returns a request's reason.
// statusMap is /v1/status as a plain map, sections included.
func (r *harness) statusMap() map[string]any {
	r.t.Helper()
	resp, err := http.Get("http://" + r.httpAddr + "/v1/status")
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		r.t.Fatal(err)
	}
	return m
}

func (r *harness) survive(t *testing.T, f fault, probe func() string) {
	t.Helper()
	good, rev := probe(), r.status().Revision
	failures := r.metric(`tenantgate_reloads_total{result="failure"}`)
	logged := len(r.logs.String())

	f.inject(t)
	eventually(t, f.name+": reported in /v1/status", 15*time.Second, func() bool {
		return strings.Contains(r.status().LastError, f.want)
	})
	st := r.status()
	if st.Revision != rev || !st.Ready {
		t.Errorf("%s: revision %s ready %t, want the last good %s serving", f.name, st.Revision, st.Ready, rev)
	}
	if got := probe(); got != good {
		t.Errorf("%s: answer %q, want the last good snapshot's %q", f.name, got, good)
	}
	if r.metric(`tenantgate_reloads_total{result="failure"}`) == failures || r.metric("tenantgate_reload_failing") != "1" {
		t.Errorf("%s: the failed reload is not in the metrics", f.name)
	}
	if news := r.logs.String()[logged:]; !strings.Contains(news, "reload failed") || !strings.Contains(news, f.want) {
		t.Errorf("%s: the logs do not say reload failed naming %q:\n%s", f.name, f.want, news)
	}

	f.restore(t)
	eventually(t, f.name+": recovered", 15*time.Second, func() bool {
		st := r.status()
		return st.LastError == "" && st.Ready
	})
	if r.metric("tenantgate_reload_failing") != "0" {
		t.Errorf("%s: tenantgate_reload_failing is not 0 after recovery", f.name)
	}
}
