package identity

import (
	"hash/maphash"
	"sync"
	"time"
)

// Cache sizing. 64 shards keep lock contention low under many request
// goroutines; 1024 entries each bound the cache at 65,536 tokens. Only tokens
// up to maxCachedToken bytes are cached, which bounds its memory too (typical
// JWTs are well under 1 KiB; a bigger one is still accepted, just verified
// every time).
const (
	cacheShards    = 64 // a power of two: the shard is picked with a mask
	cacheShardLen  = 1024
	maxCachedToken = 4096
)

// validity is when a verified token may be accepted: from (when set) up to,
// not including, until. Both already include the leeway, so the cached and
// the freshly verified path answer with the same comparison.
type validity struct {
	from    time.Time // nbf - leeway; zero when the token has no nbf
	until   time.Time // exp + leeway
	hasFrom bool
}

// check reports whether now is inside the window. It returns preallocated
// errors so that a cache hit does not allocate.
func (w *validity) check(now time.Time) error {
	if !now.Before(w.until) {
		return errExpired
	}
	if w.hasFrom && now.Before(w.from) {
		return errNotYetValid
	}
	return nil
}

// entry is one verified token: what Subject returns and when it may.
type entry struct {
	sub string
	validity
	// gen is the generation of the URL key set whose key verified the
	// token (0: a file's key): once another set is in force, the token is
	// verified again, so a key removed at the provider stops working at
	// the refresh that removed it.
	gen uint64
}

type shard struct {
	mu sync.RWMutex
	m  map[string]entry
	// Pads the shard (24-byte lock + map pointer) to a 64-byte cache line:
	// RLock writes the reader count, and readers of neighbouring shards
	// should not invalidate each other's line.
	_ [32]byte
}

// tokenCache holds verified tokens, keyed by the exact token string. It only
// ever holds successes, and a Verifier owns its cache, so a reload (a new
// Verifier) starts empty and a rotated key cannot keep an old token alive.
type tokenCache struct {
	seed   maphash.Seed
	shards [cacheShards]shard
}

func newTokenCache() *tokenCache {
	c := &tokenCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = make(map[string]entry)
	}
	return c
}

func (c *tokenCache) shard(token string) *shard {
	return &c.shards[maphash.String(c.seed, token)&(cacheShards-1)]
}

// get returns the cached entry for token, if any. The caller checks its
// validity: an entry is never evidence that the token is valid now.
func (c *tokenCache) get(token string) (entry, bool) {
	s := c.shard(token)
	s.mu.RLock()
	e, ok := s.m[token]
	s.mu.RUnlock()
	return e, ok
}

// put stores a verified token. A full shard drops one entry first; map
// iteration starts at a random position, so that is a random eviction at the
// cost of one iteration step, with no bookkeeping on the read path.
func (c *tokenCache) put(token string, e entry) {
	if len(token) > maxCachedToken {
		return
	}
	s := c.shard(token)
	s.mu.Lock()
	if _, ok := s.m[token]; !ok && len(s.m) >= cacheShardLen {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[token] = e
	s.mu.Unlock()
}

// remove drops token; used when a cached token has expired, so that dead
// entries do not crowd out live ones.
func (c *tokenCache) remove(token string) {
	s := c.shard(token)
	s.mu.Lock()
	delete(s.m, token)
	s.mu.Unlock()
}
