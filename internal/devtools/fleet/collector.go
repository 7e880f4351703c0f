package fleet

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/plugins/logs"
)

// StatusUpdate is OPA's status API payload (status.UpdateRequestV1), the
// fields the fleet test reads. UpdateRequestV1 itself does not decode: its
// bundle status holds Errors as Go error values.
type StatusUpdate struct {
	Labels  map[string]string `json:"labels"`
	Bundles map[string]struct {
		Name                     string `json:"name"`
		ActiveRevision           string `json:"active_revision"`
		LastSuccessfulActivation string `json:"last_successful_activation"`
		LastSuccessfulDownload   string `json:"last_successful_download"`
		Code                     string `json:"code"`
		Message                  string `json:"message"`
	} `json:"bundles"`
	Plugins map[string]struct {
		State string `json:"state"`
	} `json:"plugins"`
}

// Collector is a status and decision-log service: it decodes exactly OPA's
// formats, the status API's UpdateRequestV1 (POST /status) and the
// decision-log API's gzipped JSON array of EventV1 (POST /logs).
type Collector struct {
	mu sync.Mutex
	// Latest status by instance id (labels.id).
	Status map[string]*StatusUpdate
	// Events counts decision-log events by bundle revision.
	Events map[string]int
	// Batches counts uploaded batches; TokenLeaks those that held a bearer
	// token (none may).
	Batches, TokenLeaks int
	// Bad counts requests that did not decode.
	Bad int
}

// NewCollector returns an empty collector.
func NewCollector() *Collector {
	return &Collector{Status: map[string]*StatusUpdate{}, Events: map[string]int{}}
}

// ServeHTTP implements http.Handler for /status and /logs.
func (c *Collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/status"):
		var u StatusUpdate
		if err := json.Unmarshal(body, &u); err != nil || u.Labels["id"] == "" {
			c.Bad++
			http.Error(w, "not an OPA status update", http.StatusBadRequest)
			return
		}
		c.Status[u.Labels["id"]] = &u
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/logs"):
		if r.Header.Get("Content-Encoding") != "gzip" {
			c.Bad++
			http.Error(w, "want gzip", http.StatusBadRequest)
			return
		}
		gz, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			c.Bad++
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		raw, err := io.ReadAll(gz)
		var events []logs.EventV1
		if err == nil {
			err = json.Unmarshal(raw, &events)
		}
		if err != nil {
			c.Bad++
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.Batches++
		if bytes.Contains(bytes.ToLower(raw), []byte("bearer ")) {
			c.TokenLeaks++
		}
		for _, e := range events {
			c.Events[e.Revision]++
		}
	default:
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// Reporting counts the instances whose latest status shows revision active
// for bundle name.
func (c *Collector) Reporting(name, revision string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, u := range c.Status {
		if b, ok := u.Bundles[name]; ok && b.ActiveRevision == revision {
			n++
		}
	}
	return n
}

// ReportingError counts the instances whose latest status shows an error
// for bundle name.
func (c *Collector) ReportingError(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, u := range c.Status {
		if b, ok := u.Bundles[name]; ok && b.Message != "" {
			n++
		}
	}
	return n
}

// Snapshot returns the decision-log figures.
func (c *Collector) Snapshot() (events map[string]int, batches, leaks, bad int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	events = make(map[string]int, len(c.Events))
	for k, v := range c.Events {
		events[k] = v
	}
	return events, c.Batches, c.TokenLeaks, c.Bad
}
