package distribution

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	opametrics "github.com/open-policy-agent/opa/v1/metrics"
	bundleplugin "github.com/open-policy-agent/opa/v1/plugins/bundle"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	"github.com/open-policy-agent/opa/v1/plugins/status"
	"github.com/open-policy-agent/opa/v1/server"

	"github.com/tenantgate/tenantgate/internal/engine"
)

// DecisionPath is the path decision log events name: the rule tenantgate
// evaluates for each request.
const DecisionPath = "tenantgate/authz/decision"

// QueueSize bounds the decisions waiting to be handed to OPA's decision-log
// plugin. The decision path only ever does a non-blocking send: a full
// queue drops the event and counts it, it never slows a decision.
const QueueSize = 8192

// Reporters are OPA's status and decision-log plugins, run on their own
// (not under OPA's plugin manager's Start, which would also start bundle
// activation and evaluation): the status plugin is told of every bundle
// download, activation and error; the decision-log plugin gets every
// decision, buffers it in OPA's bounded buffer and uploads gzipped JSON
// batches with OPA's delays, size limits and retries.
type Reporters struct {
	status *status.Plugin
	logs   *logs.Plugin
	log    *slog.Logger

	bundleName string
	queue      chan event
	dropped    atomic.Uint64 // events dropped because the queue was full
	opaMetrics opametrics.Metrics
	wg         sync.WaitGroup
	stop       chan struct{}
}

type event struct {
	method, path, user, customer, reason, revision string
	status                                         int
	allowed, dryRun                                bool
	at                                             time.Time
	elapsed                                        time.Duration
}

// StartReporters starts what the config's status and decision_logs
// sections ask for; nil when neither is configured.
func StartReporters(ctx context.Context, cfg *Config, log *slog.Logger) (*Reporters, error) {
	if cfg.Status == nil && cfg.Logs == nil {
		return nil, nil
	}
	r := &Reporters{log: log, bundleName: cfg.BundleName, stop: make(chan struct{}), opaMetrics: opametrics.New()}
	m := cfg.Manager
	if cfg.Status != nil {
		r.status = status.New(cfg.Status, m)
		m.Register(status.Name, r.status)
		if err := r.status.Start(ctx); err != nil {
			return nil, err
		}
	}
	if cfg.Logs != nil {
		r.logs = logs.New(cfg.Logs, m).WithMetrics(r.opaMetrics)
		m.Register(logs.Name, r.logs)
		if err := r.logs.Start(ctx); err != nil {
			return nil, err
		}
		r.queue = make(chan event, QueueSize)
		r.wg.Go(r.drain)
	}
	return r, nil
}

// BundleStatus hands the status plugin a bundle's status (Source.Attach).
func (r *Reporters) BundleStatus(st map[string]*bundleplugin.Status) {
	if r != nil && r.status != nil {
		r.status.BulkUpdateBundleStatus(st)
	}
}

// Logging reports whether decisions are uploaded.
func (r *Reporters) Logging() bool { return r != nil && r.logs != nil }

// ObserveDecision implements engine.Observer: a copy of what the log
// needs, never the Authorization header, queued without blocking.
func (r *Reporters) ObserveDecision(req *engine.Request, res *engine.Result, elapsed time.Duration) {
	e := event{
		method: req.Method, path: req.Path, user: res.User, customer: res.Customer,
		reason: res.Reason, status: res.Status, allowed: res.Allowed, dryRun: res.DryRun,
		revision: res.Revision, at: time.Now(), elapsed: elapsed,
	}
	if res.DryRun {
		e.reason, e.status = res.Denied.Reason, res.Denied.Status
	}
	select {
	case r.queue <- e:
	default:
		r.dropped.Add(1)
	}
}

// ObserveReload implements engine.Observer.
func (*Reporters) ObserveReload(*engine.Snapshot, error) {}

// Dropped returns the events dropped, by where: "queue" (tenantgate's hand
// over to the plugin) and OPA's own buffer limits.
func (r *Reporters) Dropped() map[string]uint64 {
	out := map[string]uint64{"queue": r.dropped.Load()}
	all := r.opaMetrics.All()
	for _, k := range []string{"decision_logs_dropped_buffer_size_limit_exceeded",
		"decision_logs_dropped_buffer_size_limit_bytes_exceeded", "decision_logs_dropped_rate_limit_exceeded",
		"decision_logs_encoding_failure"} {
		var n uint64
		if v, ok := all["counter_"+k].(uint64); ok {
			n = v
		}
		out[k] = n
	}
	return out
}

// drain hands queued events to OPA's plugin, off the decision path: Log
// evaluates the (empty) mask and drop queries and encodes the event.
func (r *Reporters) drain() {
	var id [16]byte
	for {
		select {
		case <-r.stop:
			return
		case e := <-r.queue:
			_, _ = rand.Read(id[:])
			input := any(map[string]any{"method": e.method, "path": e.path})
			result := any(map[string]any{
				"allowed": e.allowed, "status": e.status, "reason": e.reason,
				"user": e.user, "customer": e.customer, "dry_run": e.dryRun,
			})
			info := &server.Info{
				DecisionID: hex.EncodeToString(id[:]),
				Path:       DecisionPath,
				Input:      &input,
				Results:    &result,
				Revision:   e.revision,
				Timestamp:  e.at.UTC(),
			}
			if r.bundleName != "" && e.revision != "" {
				info.Bundles = map[string]server.BundleInfo{r.bundleName: {Revision: e.revision}}
			}
			if err := r.logs.Log(context.Background(), info); err != nil {
				r.log.Warn("decision log event not logged", "error", err)
			}
		}
	}
}

// Stop flushes what it can within ctx: the queued decisions to the plugin,
// the plugin's buffer to the service, the last status.
func (r *Reporters) Stop(ctx context.Context) {
	if r == nil {
		return
	}
	if r.logs != nil {
		// Let the queue empty, bounded by ctx.
		for len(r.queue) > 0 && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		close(r.stop)
		r.wg.Wait()
		r.logs.Stop(ctx)
	}
	if r.status != nil {
		r.status.Stop(ctx)
	}
}
