// Package metrics exports tenantgate's Prometheus metrics: decisions by result
// and reason, decision latency, reloads by result, the revision in force, and
// each source's state.
package metrics

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tenantgate/tenantgate/internal/buildinfo"
	"github.com/tenantgate/tenantgate/internal/decision"
	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/identity"
)

// Metrics implements engine.Observer. It has its own registry, so tests and
// several servers in one process do not collide.
type Metrics struct {
	reg       *prometheus.Registry
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	reloads   *prometheus.CounterVec
	revision  *prometheus.GaugeVec
	failing   prometheus.Gauge
	loadedAt  prometheus.Gauge
	buildTime prometheus.Histogram

	// Per source (engine.Source*): each keeps its own last good version.
	sourceOK       *prometheus.GaugeVec
	sourceErrors   *prometheus.CounterVec
	sourceLoadedAt *prometheus.GaugeVec

	// The URL key set (engine.SourceJWKSURL), updated at each fetch.
	jwksFetches     *prometheus.CounterVec
	jwksKeys        prometheus.Gauge
	jwksLastSuccess prometheus.Gauge
	jwksKidRefresh  prometheus.Counter
	jwksKidSeen     atomic.Uint64
	evaluator       *prometheus.GaugeVec // 1 for the snapshot's {requested, in_use}
	mismatches      prometheus.Gauge     // the self-check's, for the snapshot's policy

	// Counters resolved once per known reason: WithLabelValues hashes and
	// locks, which the decision path need not pay.
	allowed prometheus.Counter
	denied  map[string]prometheus.Counter
}

// New registers the collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_decisions_total",
			Help: "Authorization decisions by result (allow, deny) and reason code.",
		}, []string{"result", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tenantgate_decision_duration_seconds",
			Help:    "Time to decide one request, from request to decision (token, path, lookups, policy).",
			Buckets: []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 10e-3, 50e-3, 100e-3},
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_reloads_total",
			Help: "Snapshot builds (data, policies, keys) by result (success, failure).",
		}, []string{"result"}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tenantgate_snapshot_info",
			Help: "The snapshot in force: 1 for its revision.",
		}, []string{"revision"}),
		failing: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenantgate_reload_failing",
			Help: "1 while the last reload failed and an older snapshot is serving, else 0.",
		}),
		loadedAt: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenantgate_snapshot_loaded_timestamp_seconds",
			Help: "When the snapshot in force was built (Unix time).",
		}),
		buildTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tenantgate_snapshot_build_duration_seconds",
			Help:    "Time to build a snapshot that was then published: read, parse, validate and index the data, compile the policies, load the keys.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60},
		}),
		sourceOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tenantgate_source_ok",
			Help: "1 while a source's latest read is in force, 0 while it fails and its last good version serves (source: data, policies or bundle, hs256_secret, jwks, jwks_url).",
		}, []string{"source"}),
		sourceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_source_reload_errors_total",
			Help: "Reloads in which a source failed (its last good version kept serving), by source.",
		}, []string{"source"}),
		sourceLoadedAt: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tenantgate_source_loaded_timestamp_seconds",
			Help: "When the version of a source in force was first read (Unix time), by source.",
		}, []string{"source"}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tenantgate_jwks_fetches_total",
			Help: "Fetches of the URL key set (--jwks-url, --oidc-issuer) by result (success, failure); a failure keeps the last good key set.",
		}, []string{"result"}),
		jwksKeys: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenantgate_jwks_keys",
			Help: "Keys of the URL key set in force (the ones tenantgate verifies with).",
		}),
		jwksLastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenantgate_jwks_last_success_timestamp_seconds",
			Help: "When the URL key set was last fetched successfully (Unix time): alert when it falls far behind.",
		}),
		jwksKidRefresh: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tenantgate_jwks_unknown_kid_refreshes_total",
			Help: "Refreshes of the URL key set forced by tokens naming an unknown kid (rate-limited by --jwks-kid-refresh-interval).",
		}),
		evaluator: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tenantgate_evaluator_info",
			Help: "The evaluator the snapshot in force decides with: 1 for {requested, in_use} (ir or rego; in_use is rego when the IR evaluator declined the policy or its self-check differed).",
		}, []string{"requested", "in_use"}),
		mismatches: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tenantgate_evaluator_self_check_mismatches",
			Help: "Inputs on which the IR evaluator's build-time self-check differed from OPA's evaluator for the policy in force (any: rego serves).",
		}),
		denied: make(map[string]prometheus.Counter, len(decision.Reasons)),
	}
	build := buildinfo.Get()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "tenantgate_build_info",
		Help:        "1, labelled with the running build: tenantgate's version and VCS revision, the Go and OPA versions.",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "goversion": build.Go, "opa": build.OPA},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(m.decisions, m.latency, m.reloads, m.revision, m.failing, m.loadedAt, m.buildTime,
		m.sourceOK, m.sourceErrors, m.sourceLoadedAt, m.evaluator, m.mismatches, buildInfo,
		m.jwksFetches, m.jwksKeys, m.jwksLastSuccess, m.jwksKidRefresh,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.allowed = m.decisions.WithLabelValues("allow", decision.ReasonAllowed)
	for _, r := range decision.Reasons[1:] {
		m.denied[r] = m.decisions.WithLabelValues("deny", r)
	}
	m.reloads.WithLabelValues("success")
	m.reloads.WithLabelValues("failure")
	m.jwksFetches.WithLabelValues("success")
	m.jwksFetches.WithLabelValues("failure")
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is exposed for tests and for collectors other packages add.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveDecision implements engine.Observer.
func (m *Metrics) ObserveDecision(_ *engine.Request, res *engine.Result, elapsed time.Duration) {
	m.latency.Observe(elapsed.Seconds())
	if res.Allowed {
		m.allowed.Inc()
		return
	}
	if c, ok := m.denied[res.Reason]; ok {
		c.Inc()
		return
	}
	// A reason a policy author added: still counted, at the slower path.
	m.decisions.WithLabelValues("deny", res.Reason).Inc()
}

// ObserveReload implements engine.Observer. A reload in which a source
// failed may still have published a snapshot (another source's new
// version): it counts as a failure and its snapshot is shown.
func (m *Metrics) ObserveReload(s *engine.Snapshot, err error) {
	if err != nil {
		m.reloads.WithLabelValues("failure").Inc()
		m.failing.Set(1)
	} else {
		m.reloads.WithLabelValues("success").Inc()
		m.failing.Set(0)
	}
	if s == nil {
		return
	}
	m.revision.Reset()
	m.revision.WithLabelValues(s.Revision).Set(1)
	m.loadedAt.Set(float64(s.Built.UnixNano()) / 1e9)
	m.buildTime.Observe(s.BuildTime.Seconds())
	ev := s.Evaluator()
	m.evaluator.Reset()
	m.evaluator.WithLabelValues(ev.Requested, ev.InUse).Set(1)
	m.mismatches.Set(float64(ev.SelfCheckMismatches))
}

// ObserveSources implements engine.SourceObserver.
func (m *Metrics) ObserveSources(sources map[string]engine.SourceStatus) {
	for name, st := range sources {
		errs := m.sourceErrors.WithLabelValues(name) // shown from 0 on
		if st.OK {
			m.sourceOK.WithLabelValues(name).Set(1)
		} else {
			m.sourceOK.WithLabelValues(name).Set(0)
			errs.Inc()
		}
		if !st.LoadedAt.IsZero() {
			m.sourceLoadedAt.WithLabelValues(name).Set(float64(st.LoadedAt.UnixNano()) / 1e9)
		}
	}
}

// Register adds a collector of another package (the bundle distribution's)
// to the registry /metrics serves.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// ObserveKeySet is the URL key set's identity.RemoteConfig.OnFetch: it is
// called once per fetch, good or not. The source's state goes into the
// per-source metrics as the reloaded sources' do.
func (m *Metrics) ObserveKeySet(st identity.RemoteStatus) {
	m.ObserveSources(map[string]engine.SourceStatus{engine.SourceJWKSURL: engine.RemoteSourceStatus(st)})
	if st.OK {
		m.jwksFetches.WithLabelValues("success").Inc()
		m.jwksLastSuccess.Set(float64(st.LastSuccessAt.UnixNano()) / 1e9)
	} else {
		m.jwksFetches.WithLabelValues("failure").Inc()
	}
	m.jwksKeys.Set(float64(len(st.KeyIDs)))
	// KidRefreshes is a running total; the counter takes what it has not
	// seen yet.
	for {
		seen := m.jwksKidSeen.Load()
		if st.KidRefreshes <= seen {
			break
		}
		if m.jwksKidSeen.CompareAndSwap(seen, st.KidRefreshes) {
			m.jwksKidRefresh.Add(float64(st.KidRefreshes - seen))
			break
		}
	}
}
