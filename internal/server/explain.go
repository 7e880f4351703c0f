package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/tenantgate/tenantgate/internal/analysis"
	"github.com/tenantgate/tenantgate/internal/engine"
)

// analysisTimeout bounds one /v1/explain, /v1/access or /v1/who-can answer
// (who-can decides once per user: seconds at 200,000 users).
const analysisTimeout = 60 * time.Second

// ExplainHandlers are /v1/explain, /v1/access and /v1/who-can, answering
// from the snapshot in force with the JSON of `tenantgate explain`,
// `access` and `who-can`. They reveal the tenant tree, so `serve` mounts
// them on the admin address only, and only with --admin-explain
// (Config.AdminHandlers); never on the decision address.
func ExplainHandlers(e *engine.Engine) map[string]http.Handler {
	answer := func(f func(ctx context.Context, s *engine.Snapshot, q map[string]string) (any, error), params ...string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s := e.Snapshot()
			if s == nil {
				writeAnalysis(w, http.StatusServiceUnavailable, map[string]string{"error": "no snapshot loaded yet"})
				return
			}
			q := map[string]string{}
			for _, p := range params {
				q[p] = r.URL.Query().Get(p)
			}
			ctx, cancel := context.WithTimeout(r.Context(), analysisTimeout)
			defer cancel()
			v, err := f(ctx, s, q)
			var bad badQuery
			switch {
			case errors.As(err, &bad):
				writeAnalysis(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			case err != nil:
				writeAnalysis(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			default:
				writeAnalysis(w, http.StatusOK, v)
			}
		})
	}
	return map[string]http.Handler{
		"GET /v1/explain": answer(func(ctx context.Context, s *engine.Snapshot, q map[string]string) (any, error) {
			if q["user"] == "" || q["path"] == "" {
				return nil, badQuery("want ?user=U&path=P[&method=M]")
			}
			if q["method"] == "" {
				q["method"] = http.MethodGet
			}
			return analysis.Explain(ctx, s, q["user"], engine.Request{Method: q["method"], Path: q["path"]})
		}, "user", "method", "path"),
		"GET /v1/access": answer(func(ctx context.Context, s *engine.Snapshot, q map[string]string) (any, error) {
			if q["user"] == "" {
				return nil, badQuery("want ?user=U[&customer=C]")
			}
			a, err := analysis.UserAccess(ctx, s, q["user"], analysis.AccessOptions{Under: q["customer"]})
			if err != nil && ctx.Err() == nil {
				return nil, badQuery(err.Error())
			}
			return a, err
		}, "user", "customer"),
		"GET /v1/who-can": answer(func(ctx context.Context, s *engine.Snapshot, q map[string]string) (any, error) {
			if q["path"] == "" {
				return nil, badQuery("want ?path=P[&method=M]")
			}
			if q["method"] == "" {
				q["method"] = http.MethodGet
			}
			return analysis.UsersWhoCan(ctx, s, q["method"], q["path"])
		}, "method", "path"),
	}
}

type badQuery string

func (b badQuery) Error() string { return string(b) }

func writeAnalysis(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
