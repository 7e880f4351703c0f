package identity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// A key set fetched from a URL (--jwks-url, or the jwks_uri of an OIDC
// issuer) is a live source: the verifier of every snapshot reads its keys
// through one RemoteKeys, whose current key set is one atomic pointer that
// each successful fetch replaces. So a rotation at the provider takes effect
// without a snapshot rebuild, a failed fetch never touches data or
// policies (nor they it), and the decision path takes no lock a fetch
// contends on.
//
// The fetching itself is httprc's, the cache jwk.Cache is built on:
// scheduled refreshes within [MinRefresh, MaxRefresh] honouring
// Cache-Control max-age (or Expires), forced refreshes through
// Controller.Refresh, and the last value kept when a fetch fails. Our own
// Transformer (instead of jwk.Cache's) checks the keys the way the JWKS file
// is checked, binding each to its one algorithm, and publishes them at the
// moment of the fetch.

// Defaults of RemoteConfig.
const (
	DefaultMinRefresh   = time.Minute
	DefaultMaxRefresh   = 15 * time.Minute
	DefaultKidRefresh   = 10 * time.Second
	DefaultKidWait      = 100 * time.Millisecond
	DefaultFetchTimeout = 10 * time.Second
	// DefaultStartTimeout is how long start-up waits for a first key set.
	DefaultStartTimeout = 30 * time.Second
)

// maxJWKSBody bounds a fetched JWKS (or discovery document): real ones are a
// few KiB.
const maxJWKSBody = 1 << 20

// RemoteConfig configures a key set fetched from a URL. Set JWKSURL or
// Issuer (not both).
type RemoteConfig struct {
	JWKSURL string // the JWKS URL
	// Issuer is an OIDC issuer: its /.well-known/openid-configuration
	// names the JWKS URL (jwks_uri), and its issuer must equal this.
	Issuer string
	// CAFile is a PEM CA bundle the provider's certificate must chain to;
	// empty: the system roots.
	CAFile string
	// Insecure allows plain http:// to a host that is not loopback.
	Insecure bool
	// MinRefresh and MaxRefresh bound the refresh interval: a response's
	// Cache-Control max-age (or Expires) within them is honoured, one
	// without either is refreshed after MinRefresh, and a failed fetch is
	// retried after MinRefresh.
	MinRefresh, MaxRefresh time.Duration
	// KidRefresh is the least time between two refreshes forced by tokens
	// naming a kid the key set does not have: a flood of random kids costs
	// the provider one fetch per KidRefresh.
	KidRefresh time.Duration
	// KidWait is how long a request whose kid is unknown waits for the
	// refresh it forced (or one in flight); past it the token is refused,
	// and the refresh goes on for the requests after it.
	KidWait time.Duration
	// FetchTimeout bounds one HTTP request.
	FetchTimeout time.Duration
	Logger       *slog.Logger
	// OnFetch, when set, is called after every fetch with the state then
	// (the metrics). It must be cheap and must not call back into RemoteKeys.
	OnFetch func(RemoteStatus)
}

// RemoteStatus is the state of a URL key set, for /v1/status and metrics.
type RemoteStatus struct {
	URL    string
	Issuer string // the OIDC issuer the URL was discovered from, if any
	// OK is false while the latest fetch failed: the last good key set
	// (if any) is still in force.
	OK       bool
	Revision string   // digest prefix of the key set in force
	KeyIDs   []string // kids of the keys in force ("" for a key without one)
	// Skipped says which published keys are not used, and why (an
	// encryption key, an algorithm tenantgate does not verify).
	Skipped       []string
	LoadedAt      time.Time // when the key set in force was first fetched
	LastFetchAt   time.Time // the latest fetch, good or not
	LastSuccessAt time.Time
	LastError     string
	LastErrorAt   time.Time
	Fetches       uint64 // fetches attempted
	Failures      uint64 // fetches that failed
	KidRefreshes  uint64 // refreshes forced by unknown kids
}

// keySet is one fetched key set; immutable once published.
type keySet struct {
	keys   []jwksKey
	byKid  map[string]*jwksKey
	digest string
	// gen numbers the key sets published, from 1; a token verified with a
	// key of this set is cached with gen, and re-verified once another
	// set is in force.
	gen uint64
}

func (ks *keySet) kids() []string {
	out := make([]string, len(ks.keys))
	for i, k := range ks.keys {
		out[i] = k.kid
	}
	return out
}

// RemoteKeys is a JWKS fetched from a URL and kept fresh. It is safe for
// concurrent use; Close stops it.
type RemoteKeys struct {
	cfg    RemoteConfig
	url    string
	issuer string
	client *http.Client
	ctrl   httprc.Controller
	cancel context.CancelFunc

	set    atomic.Pointer[keySet] // nil until the first good fetch
	first  chan struct{}          // closed by the first good fetch
	once   sync.Once
	flight atomic.Pointer[kidFlight] // the latest refresh forced by a kid

	mu sync.Mutex // guards st; never taken by the decision path
	st RemoteStatus
}

// kidFlight is a refresh forced by an unknown kid: done is closed when it
// has finished, good or not.
type kidFlight struct {
	done chan struct{}
	at   time.Time
}

// StartRemote discovers the JWKS URL (with cfg.Issuer), starts keeping its
// key set fresh, and waits up to wait for a first good key set: without one
// no token it signs could be verified. The fetches go on until Close, or
// until ctx is cancelled.
func StartRemote(ctx context.Context, cfg RemoteConfig, wait time.Duration) (*RemoteKeys, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	client, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	r := &RemoteKeys{cfg: cfg, url: cfg.JWKSURL, issuer: cfg.Issuer, client: client, first: make(chan struct{})}
	wctx, cancelWait := context.WithTimeout(ctx, wait)
	defer cancelWait()
	if cfg.Issuer != "" {
		if r.url, err = discover(wctx, cfg, client); err != nil {
			return nil, err
		}
	}
	r.st.URL, r.st.Issuer = r.url, r.issuer

	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-ctx.Done():
			cancel()
		case <-rctx.Done():
		}
	}()
	r.cancel = cancel
	// One worker: there is one resource, and a forced refresh queues
	// behind a scheduled one instead of racing it.
	r.ctrl, err = httprc.NewClient(httprc.WithWorkers(1)).Start(rctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("JWKS %s: %w", r.url, err)
	}
	res, err := httprc.NewResource[*keySet](r.url, httprc.TransformFunc[*keySet](r.transform),
		httprc.WithHTTPClient(fetcher{r}),
		httprc.WithMinInterval(cfg.MinRefresh),
		httprc.WithMaxInterval(cfg.MaxRefresh))
	if err == nil {
		err = r.ctrl.Add(rctx, res, httprc.WithWaitReady(false))
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("JWKS %s: %w", r.url, err)
	}
	if err := r.waitFirst(wctx, wait); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (c RemoteConfig) withDefaults() RemoteConfig {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.MinRefresh, DefaultMinRefresh)
	def(&c.MaxRefresh, DefaultMaxRefresh)
	def(&c.KidRefresh, DefaultKidRefresh)
	def(&c.KidWait, DefaultKidWait)
	def(&c.FetchTimeout, DefaultFetchTimeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

func (c RemoteConfig) check() error {
	switch {
	case (c.JWKSURL == "") == (c.Issuer == ""):
		return errors.New("give a JWKS URL or an OIDC issuer (one of them)")
	case c.MinRefresh < time.Second:
		return fmt.Errorf("JWKS minimum refresh interval %s: must be at least 1s", c.MinRefresh)
	case c.MaxRefresh < c.MinRefresh:
		return fmt.Errorf("JWKS maximum refresh interval %s is below the minimum %s", c.MaxRefresh, c.MinRefresh)
	case c.KidRefresh < 0 || c.KidWait < 0 || c.FetchTimeout <= 0:
		return errors.New("JWKS kid refresh interval, kid wait and fetch timeout must not be negative")
	}
	if c.Issuer != "" {
		return checkURL("OIDC issuer", c.Issuer, c.Insecure)
	}
	return checkURL("JWKS URL", c.JWKSURL, c.Insecure)
}

// waitFirst waits for the first good key set. httprc retries a failed fetch
// only after MinRefresh; at start-up a provider that is still coming up is
// asked again sooner, with a backoff from 250 ms to 5 s.
func (r *RemoteKeys) waitFirst(ctx context.Context, wait time.Duration) error {
	backoff := 250 * time.Millisecond
	for {
		t := time.NewTimer(backoff)
		select {
		case <-r.first:
			t.Stop()
			return nil
		case <-ctx.Done():
			t.Stop()
			st := r.Status()
			return fmt.Errorf("JWKS %s: no key set within %s (the start-up timeout): last error: %s", r.url, wait, cmpOr(st.LastError, ctx.Err().Error()))
		case <-t.C:
		}
		_ = r.ctrl.Refresh(ctx, r.url) // its error is recorded in the status
		backoff = min(2*backoff, 5*time.Second)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Close stops the refreshes. The key set in force stays readable.
func (r *RemoteKeys) Close() {
	r.cancel()
	if r.ctrl != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = r.ctrl.ShutdownContext(ctx)
	}
}

// URL is the JWKS URL (discovered, with an issuer).
func (r *RemoteKeys) URL() string { return r.url }

// Issuer is the OIDC issuer the URL was discovered from, "" without one.
func (r *RemoteKeys) Issuer() string { return r.issuer }

// Status returns the current state.
func (r *RemoteKeys) Status() RemoteStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.KeyIDs, st.Skipped = slices.Clone(st.KeyIDs), slices.Clone(st.Skipped)
	return st
}

// current is the key set in force (nil before the first good fetch). One
// atomic load: this is what the decision path reads.
func (r *RemoteKeys) current() *keySet { return r.set.Load() }

// gen is the generation of the key set in force, 0 before the first (and
// on a nil RemoteKeys, a verifier without a URL key set).
func (r *RemoteKeys) gen() uint64 {
	if r == nil {
		return 0
	}
	if ks := r.set.Load(); ks != nil {
		return ks.gen
	}
	return 0
}

// refreshForKid is called when a token names a kid the key set in force
// does not have. At most one refresh per KidRefresh is forced; a caller
// waits up to KidWait for the one in flight, then gets the key set in force
// (new or not). A caller inside the rate limit with no refresh in flight
// does not wait at all.
func (r *RemoteKeys) refreshForKid() *keySet {
	now := time.Now()
	f := r.flight.Load()
	if f == nil || isDone(f.done) && now.Sub(f.at) >= r.cfg.KidRefresh {
		nf := &kidFlight{done: make(chan struct{}), at: now}
		if r.flight.CompareAndSwap(f, nf) {
			r.mu.Lock()
			r.st.KidRefreshes++
			r.mu.Unlock()
			go r.forceRefresh(nf)
		}
		f = r.flight.Load()
	}
	if !isDone(f.done) && r.cfg.KidWait > 0 {
		t := time.NewTimer(r.cfg.KidWait)
		select {
		case <-f.done:
		case <-t.C:
		}
		t.Stop()
	}
	return r.set.Load()
}

func (r *RemoteKeys) forceRefresh(f *kidFlight) {
	defer close(f.done)
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.FetchTimeout)
	defer cancel()
	if err := r.ctrl.Refresh(ctx, r.url); err != nil {
		r.cfg.Logger.Debug("JWKS refresh for an unknown kid failed; the key set in force stays", "url", r.url, "error", err)
	}
}

func isDone(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// fetcher is the HTTP client httprc fetches through: it records every
// attempt, and the failures that happen before the body is read.
type fetcher struct{ r *RemoteKeys }

func (f fetcher) Do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	start := time.Now()
	res, err := f.r.client.Do(req)
	switch {
	case err != nil:
		f.r.failed(start, fmt.Errorf("fetch: %w", err))
	case res.StatusCode != http.StatusOK:
		f.r.failed(start, fmt.Errorf("fetch: HTTP status %d, want 200", res.StatusCode))
	default:
		f.r.mu.Lock()
		f.r.st.Fetches++
		f.r.st.LastFetchAt = start
		f.r.mu.Unlock()
	}
	return res, err
}

// transform reads and checks a fetched JWKS and publishes it. An error
// keeps the key set in force (httprc keeps its value too).
func (r *RemoteKeys) transform(_ context.Context, res *http.Response) (*keySet, error) {
	now := time.Now()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxJWKSBody+1))
	if err == nil && len(b) > maxJWKSBody {
		err = fmt.Errorf("the JWKS is larger than %d bytes", maxJWKSBody)
	}
	var ks *keySet
	var skipped []string
	if err == nil {
		ks, skipped, err = parseRemoteJWKS(b)
	}
	if err != nil {
		err = fmt.Errorf("JWKS %s: %w", r.url, err)
		r.recordFailure(now, err, false)
		return nil, err
	}
	r.publish(now, ks, skipped)
	return ks, nil
}

// failed records a fetch that got no usable response.
func (r *RemoteKeys) failed(at time.Time, err error) {
	r.recordFailure(at, fmt.Errorf("JWKS %s: %w", r.url, err), true)
}

func (r *RemoteKeys) recordFailure(at time.Time, err error, attempt bool) {
	r.mu.Lock()
	if attempt {
		r.st.Fetches++
		r.st.LastFetchAt = at
	}
	r.st.Failures++
	r.st.OK, r.st.LastError, r.st.LastErrorAt = false, err.Error(), at
	st := r.st
	r.mu.Unlock()
	r.cfg.Logger.Error("JWKS fetch failed; the last good key set keeps serving", "source", "jwks_url", "url", r.url, "error", err)
	r.observe(st)
}

// publish makes ks the key set in force, unless it is the one in force.
func (r *RemoteKeys) publish(at time.Time, ks *keySet, skipped []string) {
	r.mu.Lock()
	cur := r.set.Load()
	changed := cur == nil || cur.digest != ks.digest
	if changed {
		if cur != nil {
			ks.gen = cur.gen + 1
		} else {
			ks.gen = 1
		}
		r.set.Store(ks)
		r.st.LoadedAt = at
		r.st.KeyIDs, r.st.Skipped, r.st.Revision = ks.kids(), skipped, ks.digest[:12]
	}
	r.st.OK, r.st.LastError, r.st.LastErrorAt, r.st.LastSuccessAt = true, "", time.Time{}, at
	st := r.st
	r.mu.Unlock()
	r.once.Do(func() { close(r.first) })
	if changed {
		r.cfg.Logger.Info("JWKS key set in force", "source", "jwks_url", "url", r.url, "revision", st.Revision,
			"kids", strings.Join(st.KeyIDs, ","), "skipped", len(skipped))
		for _, s := range skipped {
			r.cfg.Logger.Warn("JWKS key not used", "url", r.url, "key", s)
		}
	}
	r.observe(st)
}

func (r *RemoteKeys) observe(st RemoteStatus) {
	if r.cfg.OnFetch != nil {
		st.KeyIDs, st.Skipped = slices.Clone(st.KeyIDs), slices.Clone(st.Skipped)
		r.cfg.OnFetch(st)
	}
}

// parseRemoteJWKS checks a fetched JWKS. Unlike a JWKS file, which the
// operator writes for tenantgate alone, a provider's JWKS serves every
// relying party: it may hold encryption keys, or keys of algorithms
// tenantgate does not verify. Those are skipped (and listed); a set with no
// usable key, or with one kid twice, is an error that keeps the key set in
// force.
func parseRemoteJWKS(data []byte) (*keySet, []string, error) {
	set, err := jwk.Parse(data, jwk.WithRejectDuplicateKID(true), jwk.WithStrictKeySetParsing(false))
	if err != nil {
		return nil, nil, err
	}
	ks := &keySet{digest: digest(data)}
	var skipped []string
	for i := range set.Len() {
		k, _ := set.Key(i)
		kid, _ := k.KeyID()
		if uk, ok := k.(jwk.UnsupportedKey); ok {
			skipped = append(skipped, fmt.Sprintf("key #%d (kid %q): %v", i+1, kid, uk.Reason()))
			continue
		}
		jk, err := fromJWK(k)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key #%d (kid %q): %v", i+1, kid, err))
			continue
		}
		jk.kid = kid
		ks.keys = append(ks.keys, jk)
	}
	if len(ks.keys) == 0 {
		if len(skipped) > 0 {
			return nil, nil, fmt.Errorf("no usable key (RS256, ES256 or EdDSA signature key): %s", strings.Join(skipped, "; "))
		}
		return nil, nil, errors.New("no keys")
	}
	ks.byKid = make(map[string]*jwksKey, len(ks.keys))
	for i := range ks.keys {
		if k := &ks.keys[i]; k.kid != "" {
			ks.byKid[k.kid] = k
		}
	}
	return ks, skipped, nil
}
