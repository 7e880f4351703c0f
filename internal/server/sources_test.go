package server

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/engine"
)

// Issue 9, item 7 (spec section 1): tenant data, policies and each key
// file keep their own last good version, so a broken one never holds back
// a good edit of another; /v1/status and /metrics tell the sources apart.

// source is one source's state in /v1/status.
func (h *harness) source(name string) engine.SourceStatus {
	h.t.Helper()
	st, ok := h.status().Sources[name]
	if !ok {
		h.t.Fatalf("/v1/status has no source %q", name)
	}
	return st
}

// sourceMetric is a per-source metric's value.
func (h *harness) sourceMetric(metric, source string) string {
	h.t.Helper()
	return h.metric(metric + `{source="` + source + `"}`)
}

// breakSource injects a fault into one source and waits until /v1/status
// shows it failing with an error that names want; the other sources must
// stay OK, in /v1/status and in the metrics.
func (h *harness) breakSource(t *testing.T, name, want string, inject func()) {
	t.Helper()
	inject()
	eventually(t, name+" reported failing", 15*time.Second, func() bool {
		st := h.source(name)
		return !st.OK && strings.Contains(st.LastError, want)
	})
	st := h.status()
	if got := st.Sources[name]; got.LastErrorAt.IsZero() {
		t.Errorf("%s: last_error_at is not set: %+v", name, got)
	}
	for other, ost := range st.Sources {
		if other != name && (!ost.OK || ost.LastError != "") {
			t.Errorf("source %s is failing too while only %s is broken: %+v", other, name, ost)
		}
	}
	if !strings.Contains(st.LastError, want) {
		t.Errorf("last_reload_error %q does not name %q", st.LastError, want)
	}
	if h.sourceMetric("tenantgate_source_ok", name) != "0" {
		t.Errorf("tenantgate_source_ok{source=%q} is not 0", name)
	}
	if e := h.sourceMetric("tenantgate_source_reload_errors_total", name); e == "0" || e == "" {
		t.Errorf("tenantgate_source_reload_errors_total{source=%q} = %q, want the failure counted", name, e)
	}
}

// fixSource undoes a fault and waits until every source is OK with no
// error, in /v1/status and the metrics.
func (h *harness) fixSource(t *testing.T, name string, restore func()) {
	t.Helper()
	restore()
	eventually(t, name+" recovered", 15*time.Second, func() bool {
		st := h.status()
		return st.LastError == "" && st.Sources[name].OK
	})
	for n, st := range h.status().Sources {
		if !st.OK || st.LastError != "" || !st.LastErrorAt.IsZero() {
			t.Errorf("source %s after recovery: %+v", n, st)
		}
		if h.sourceMetric("tenantgate_source_ok", n) != "1" {
			t.Errorf("tenantgate_source_ok{source=%q} is not 1 after recovery", n)
		}
	}
	if h.metric("tenantgate_reload_failing") != "0" {
		t.Error("tenantgate_reload_failing is not 0 after recovery")
	}
}

// TestSourcesKeyRotationUnderBrokenData: with a data file broken, the
// HS256 secret and the JWKS are rotated: the new keys' tokens are accepted
// and the old keys' refused, while the data stays on its last good version.
func TestSourcesKeyRotationUnderBrokenData(t *testing.T) {
	oldKey, newKey := newJWKSKey(t, "2026-01"), newJWKSKey(t, "2026-02")
	jwksFile := filepath.Join(t.TempDir(), "jwks.json")
	writeFile(t, jwksFile, jwksJSON(t, oldKey))
	h := launch(t, serveOpts{jwksFile: jwksFile})
	oldHS, oldEd := h.token(alice), oldKey.token(t, alice)
	for _, tok := range []string{oldHS, oldEd} {
		if got := h.withToken(tok); got != "allowed" {
			t.Fatalf("an old key's token before the rotation: %s", got)
		}
	}
	users := filepath.Join(h.dataDir, "users.yaml")
	orig := readFile(t, users)
	dataRev := h.source(engine.SourceData).Revision
	rev := h.status().Revision

	h.breakSource(t, engine.SourceData, "users.yaml", func() {
		// Broken, and wider if it were served: bob would get branch-1.
		writeFile(t, users, widen(t, orig)+"\n  : [unclosed\n")
	})

	renameInto(t, h.secret, "a-new-hs256-secret-after-the-rotation\n")
	newHS := h.token(alice) // signed with the new secret
	renameInto(t, jwksFile, jwksJSON(t, newKey))
	newEd := newKey.token(t, alice)
	eventually(t, "the rotated keys in force under broken data", 15*time.Second, func() bool {
		return h.withToken(newHS) == "allowed" && h.withToken(newEd) == "allowed"
	})
	for name, tok := range map[string]string{"HS256": oldHS, "JWKS": oldEd} {
		if got := h.withToken(tok); got != "unauthenticated" {
			t.Errorf("the old %s key after the rotation: %s, want unauthenticated", name, got)
		}
	}
	st := h.status()
	if d := st.Sources[engine.SourceData]; d.OK || d.Revision != dataRev || !strings.Contains(d.LastError, "users.yaml") {
		t.Errorf("data after the rotation: %+v, want still failing on users.yaml at revision %s", d, dataRev)
	}
	if st.Revision != rev {
		t.Errorf("snapshot revision %s, want %s: the keys are not part of it and the data did not change", st.Revision, rev)
	}
	if got := h.bobBranch(); got != "location_forbidden" {
		t.Errorf("bob on branch-1 under the broken file: %s, want the last good data's location_forbidden", got)
	}
	for _, name := range []string{engine.SourceHS256Secret, engine.SourceJWKS} {
		if s := st.Sources[name]; !s.OK || s.LastError != "" {
			t.Errorf("%s after the rotation: %+v", name, s)
		}
	}
	if st.Sources[engine.SourceHS256Secret].Revision != "" {
		t.Error("/v1/status shows a digest of the HS256 secret")
	}

	h.fixSource(t, engine.SourceData, func() { renameInto(t, users, widen(t, orig)) })
	if got := h.bobBranch(); got != "allowed" {
		t.Errorf("bob on branch-1 after the fix: %s", got)
	}
	if got := h.withToken(newHS); got != "allowed" {
		t.Errorf("the new HS256 key after the data fix: %s", got)
	}
}

// TestSourcesDisableUnderBrokenSecret: with the HS256 secret file broken,
// a user's `disabled: true` takes effect, and the last good secret keeps
// verifying tokens.
func TestSourcesDisableUnderBrokenSecret(t *testing.T) {
	faults := []struct {
		name, want string
		inject     func(t *testing.T, path string)
	}{
		{"empty", "the secret is empty", func(t *testing.T, path string) { writeFile(t, path, "") }},
		{"too short", "HS256 needs at least", func(t *testing.T, path string) { writeFile(t, path, "short\n") }},
		{"gone", "no such file", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			h := start(t)
			secret := readFile(t, h.secret)
			aliceTok, bobTok := h.token(alice), h.token("bob@contoso.example")
			users := filepath.Join(h.dataDir, "users.yaml")
			orig := readFile(t, users)
			const aliceEntry = "alice@contoso.example:\n    customer: contoso\n    role: company-owner\n"
			if !strings.Contains(orig, aliceEntry) {
				t.Fatalf("demo users.yaml no longer has %q; update this test", aliceEntry)
			}

			h.breakSource(t, engine.SourceHS256Secret, f.want, func() { f.inject(t, h.secret) })
			if got := h.withToken(aliceTok); got != "allowed" {
				t.Fatalf("alice under the broken secret, before the edit: %s", got)
			}
			renameInto(t, users, strings.Replace(orig, aliceEntry, aliceEntry+"    disabled: true\n", 1))
			eventually(t, "alice's disabled: true in force under a broken secret", 15*time.Second, func() bool {
				return h.withToken(aliceTok) == "user_disabled"
			})
			// The old key still verifies: user_disabled means the token
			// was accepted, and bob's is allowed.
			bobAuth := map[string]string{"authorization": "Bearer " + bobTok}
			if a := h.grpcCheck("GET", "/api/v1/customers/contoso/locations/hq/vbr-jobs", "", bobAuth); a.reason != "allowed" {
				t.Errorf("bob with the last good secret: %s", a.reason)
			}
			if s := h.source(engine.SourceHS256Secret); s.OK || !strings.Contains(s.LastError, f.want) {
				t.Errorf("hs256_secret after the data edit: %+v", s)
			}
			if d := h.source(engine.SourceData); !d.OK || d.LastError != "" {
				t.Errorf("data after its good edit: %+v", d)
			}

			h.fixSource(t, engine.SourceHS256Secret, func() { renameInto(t, h.secret, secret) })
			if got := h.withToken(aliceTok); got != "user_disabled" {
				t.Errorf("alice after the secret is fixed: %s", got)
			}
		})
	}
}

// TestSourcesDataEditUnderBrokenPolicy: with a policy broken, a data edit
// takes effect; the policies keep their last good version.
func TestSourcesDataEditUnderBrokenPolicy(t *testing.T) {
	h := start(t)
	pol := filepath.Join(h.policies, "authz.rego")
	src := readFile(t, pol)
	users := filepath.Join(h.dataDir, "users.yaml")
	orig := readFile(t, users)
	polRev := h.source(engine.SourcePolicies).Revision
	dataLoaded := h.source(engine.SourceData).LoadedAt

	h.breakSource(t, engine.SourcePolicies, "authz.rego", func() { writeFile(t, pol, src+"\nbroken if {\n") })
	writeFile(t, users, widen(t, orig))
	eventually(t, "the data edit in force under a broken policy", 15*time.Second, func() bool { return h.bobBranch() == "allowed" })
	st := h.status()
	if p := st.Sources[engine.SourcePolicies]; p.OK || p.Revision != polRev || !strings.Contains(p.LastError, "authz.rego") {
		t.Errorf("policies after the data edit: %+v, want still failing at revision %s", p, polRev)
	}
	if d := st.Sources[engine.SourceData]; !d.OK || !d.LoadedAt.After(dataLoaded) {
		t.Errorf("data after its edit: %+v, want OK and loaded after %v", d, dataLoaded)
	}
	if h.sourceMetric("tenantgate_source_ok", engine.SourceData) != "1" || h.sourceMetric("tenantgate_source_ok", engine.SourcePolicies) != "0" {
		t.Error("tenantgate_source_ok does not show data 1, policies 0")
	}
	if h.metric("tenantgate_reload_failing") != "1" {
		t.Error("tenantgate_reload_failing is not 1 while the policy is broken")
	}
	if !strings.Contains(h.logs.String(), "source=policies") {
		t.Error("the log does not name the failing source")
	}

	h.fixSource(t, engine.SourcePolicies, func() { writeFile(t, pol, src) })
	if got := h.bobBranch(); got != "allowed" {
		t.Errorf("bob on branch-1 after the policy fix: %s", got)
	}
}
