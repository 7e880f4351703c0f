package metrics

import (
	"testing"
	"time"

	"github.com/tenantgate/tenantgate/internal/identity"
)

// TestObserveKeySet: each fetch of the URL key set shows in the per-source
// series (source jwks_url) and in the tenantgate_jwks_* ones; a failed
// fetch keeps the key count of the set still in force.
func TestObserveKeySet(t *testing.T) {
	m := New()
	at := time.Unix(1_700_000_000, 0)
	m.ObserveKeySet(identity.RemoteStatus{OK: true, KeyIDs: []string{"a", "b"}, LoadedAt: at, LastSuccessAt: at})
	m.ObserveKeySet(identity.RemoteStatus{OK: true, KeyIDs: []string{"a", "b"}, LoadedAt: at, LastSuccessAt: at, KidRefreshes: 2})
	m.ObserveKeySet(identity.RemoteStatus{OK: false, KeyIDs: []string{"a", "b"}, LoadedAt: at, LastSuccessAt: at, LastError: "down", KidRefreshes: 2})
	text := scrape(t, m)
	for _, line := range []string{
		`tenantgate_source_ok{source="jwks_url"} 0`,
		`tenantgate_source_reload_errors_total{source="jwks_url"} 1`,
		`tenantgate_source_loaded_timestamp_seconds{source="jwks_url"} 1.7e+09`,
		`tenantgate_jwks_fetches_total{result="success"} 2`,
		`tenantgate_jwks_fetches_total{result="failure"} 1`,
		`tenantgate_jwks_keys 2`,
		`tenantgate_jwks_last_success_timestamp_seconds 1.7e+09`,
		`tenantgate_jwks_unknown_kid_refreshes_total 2`,
	} {
		has(t, text, line)
	}
}
