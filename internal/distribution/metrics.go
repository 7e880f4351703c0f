package distribution

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descInfo = prometheus.NewDesc("tenantgate_bundle_info",
		"The bundle revision in force: 1 for its name, revision and source; persisted is \"true\" until a download confirms a revision read from disk at start.",
		[]string{"name", "revision", "source", "persisted"}, nil)
	descDownload = prometheus.NewDesc("tenantgate_bundle_last_successful_download_timestamp_seconds",
		"When the bundle was last downloaded (Unix time; 0: never).", []string{"name"}, nil)
	descActivation = prometheus.NewDesc("tenantgate_bundle_last_successful_activation_timestamp_seconds",
		"When a bundle revision was last put in force (Unix time; 0: never).", []string{"name"}, nil)
	descRequest = prometheus.NewDesc("tenantgate_bundle_last_successful_request_timestamp_seconds",
		"When the bundle server last answered a poll, 200 or 304 (Unix time; 0: never).", []string{"name"}, nil)
	descFailures = prometheus.NewDesc("tenantgate_bundle_failures_total",
		"Bundles refused or not fetched, by stage (download, verification, validation): each left the last good revision serving.",
		[]string{"name", "stage"}, nil)
	descDropped = prometheus.NewDesc("tenantgate_decision_log_upload_dropped_total",
		"Decision-log events dropped before upload, by where (queue: tenantgate's hand-over; the others are OPA's buffer limits).",
		[]string{"where"}, nil)
)

// Collector exports the bundle's state and the decision-log drops.
type Collector struct {
	Source    *Source    // nil: no downloaded bundle
	Reporters *Reporters // nil: no decision-log upload
}

// Describe implements prometheus.Collector.
func (c Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descDownload, descActivation, descRequest, descFailures, descDropped} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c Collector) Collect(ch chan<- prometheus.Metric) {
	if c.Source != nil {
		for name, st := range c.Source.Status() {
			if st.ActiveRevision != "" {
				p := "false"
				if st.Persisted {
					p = "true"
				}
				ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, name, st.ActiveRevision, st.Source, p)
			}
			for d, t := range map[*prometheus.Desc]int64{descDownload: unix(st.LastSuccessfulDownload.Unix()),
				descActivation: unix(st.LastSuccessfulActivation.Unix()), descRequest: unix(st.LastSuccessfulRequest.Unix())} {
				if t < 0 {
					t = 0
				}
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(t), name)
			}
			for stage, n := range st.Failures {
				ch <- prometheus.MustNewConstMetric(descFailures, prometheus.CounterValue, float64(n), name, stage)
			}
		}
	}
	if c.Reporters.Logging() {
		for where, n := range c.Reporters.Dropped() {
			ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(n), where)
		}
	}
}

// unix maps the zero time (year 1) to 0.
func unix(s int64) int64 {
	if s < 0 {
		return 0
	}
	return s
}
