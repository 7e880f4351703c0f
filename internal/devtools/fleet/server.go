package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BundleServer serves bundles as OPA's bundle service API describes
// (docs: management-bundles, "Bundle Service API" and long polling): GET
// on the bundle's path answers 200 with the tarball and its ETag, or 304
// when If-None-Match names the current ETag; when the request carries
// "Prefer: wait=N" and the bundle is unchanged, the answer waits up to N
// seconds for a new revision first. Every answer says
// "Content-Type: application/vnd.openpolicyagent.bundles", which is how an
// OPA client learns the server supports long polling.
type BundleServer struct {
	mu      sync.Mutex
	bundles map[string]*served
	changed chan struct{} // closed and replaced on every Publish
	// Requests counts GETs by answer code, for the test's figures.
	requests map[int]int
	down     bool
}

type served struct {
	tgz  []byte
	etag string
}

// NewBundleServer returns an empty server.
func NewBundleServer() *BundleServer {
	return &BundleServer{bundles: map[string]*served{}, changed: make(chan struct{}), requests: map[int]int{}}
}

// Publish makes tgz the bundle at path (e.g. /bundles/tenantgate.tar.gz)
// and wakes every long poll.
func (s *BundleServer) Publish(path string, tgz []byte) {
	sum := sha256.Sum256(tgz)
	s.mu.Lock()
	s.bundles[path] = &served{tgz: tgz, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// SetDown makes every request answer 503, as a server being restarted.
func (s *BundleServer) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// Requests returns how many GETs were answered with each status code.
func (s *BundleServer) Requests() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]int, len(s.requests))
	for k, v := range s.requests {
		out[k] = v
	}
	return out
}

var waitRe = regexp.MustCompile(`(?:^|[;,\s])wait=(\d+)`)

// MaxWait bounds a long poll whatever the client asks.
const MaxWait = 5 * time.Minute

// ServeHTTP implements http.Handler.
func (s *BundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		http.Error(w, "GET only", http.StatusMethodNotAllowed)
		return
	}
	var wait time.Duration
	if m := waitRe.FindStringSubmatch(r.Header.Get("Prefer")); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			wait = min(time.Duration(n)*time.Second, MaxWait)
		}
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if s.down {
			s.requests[http.StatusServiceUnavailable]++
			s.mu.Unlock()
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		b, changed := s.bundles[r.URL.Path], s.changed
		if b == nil {
			s.requests[http.StatusNotFound]++
			s.mu.Unlock()
			http.NotFound(w, r)
			return
		}
		unchanged := matches(r.Header.Get("If-None-Match"), b.etag)
		if !unchanged || wait == 0 {
			code := http.StatusOK
			if unchanged {
				code = http.StatusNotModified
			}
			s.requests[code]++
			s.mu.Unlock()
			w.Header().Set("Content-Type", "application/vnd.openpolicyagent.bundles")
			w.Header().Set("ETag", b.etag)
			if unchanged {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			w.Header().Set("Content-Length", strconv.Itoa(len(b.tgz)))
			_, _ = w.Write(b.tgz)
			return
		}
		s.mu.Unlock()
		select {
		case <-changed:
		case <-deadline.C:
			wait = 0 // answer 304 now
		case <-r.Context().Done():
			return
		}
	}
}

// matches reports whether an If-None-Match list names etag.
func matches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		if strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t), "W/")) == etag {
			return true
		}
	}
	return false
}
