package engine

import (
	"hash/maphash"
	"strings"
	"sync"

	"github.com/tenantgate/tenantgate/internal/decision"
)

// decisionCache remembers the policy's answers within one snapshot. A
// decision is a pure function of the snapshot and of (verified subject,
// method, path without its query): the token's validity and expiry are
// checked before the cache is consulted, and the policy reads nothing else.
// So a hit is exactly the answer an evaluation would give, and the cache dies
// with its snapshot: a reload can never serve a stale decision.
//
// It is sharded, each shard with its own lock, so concurrent requests rarely
// contend; reloads never touch it (a new snapshot brings a new, empty cache).
type decisionCache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
}

const cacheShards = 64

type cacheKey struct {
	subject, method, path string
}

type cached struct {
	d        decision.Decision // immutable once stored: callers must not mutate Headers
	customer string
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[cacheKey]cached
}

// newDecisionCache returns a cache of about size entries, or nil (no
// caching) when size <= 0.
func newDecisionCache(size int) *decisionCache {
	if size <= 0 {
		return nil
	}
	c := &decisionCache{seed: maphash.MakeSeed(), perShard: max(1, size/cacheShards)}
	for i := range c.shards {
		c.shards[i].m = make(map[cacheKey]cached)
	}
	return c
}

// maxCachedPath bounds what one entry can pin: with the default size, the
// keys' paths hold at most 32 MiB. API paths are far shorter; a longer one
// is decided afresh each time.
const maxCachedPath = 1024

// keyFor builds the key: the query is cut because the policy never sees it
// (the path checks cut it too), so /x?a=1 and /x?a=2 share one entry.
// ok is false for what is not worth remembering: an anonymous request (so
// unauthenticated traffic can neither fill the cache nor evict real users'
// answers) and an overlong path.
func keyFor(subject string, req *Request) (k cacheKey, ok bool) {
	path := req.Path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if subject == "" || len(path) > maxCachedPath {
		return cacheKey{}, false
	}
	return cacheKey{subject: subject, method: req.Method, path: path}, true
}

func (c *decisionCache) shard(k *cacheKey) *cacheShard {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.WriteString(k.path)
	h.WriteByte(0)
	h.WriteString(k.subject)
	h.WriteByte(0)
	h.WriteString(k.method)
	return &c.shards[h.Sum64()%cacheShards]
}

func (c *decisionCache) get(k cacheKey) (cached, bool) {
	s := c.shard(&k)
	s.mu.RLock()
	v, ok := s.m[k]
	s.mu.RUnlock()
	return v, ok
}

func (c *decisionCache) put(k cacheKey, v cached) {
	s := c.shard(&k)
	s.mu.Lock()
	if len(s.m) >= c.perShard {
		// Full: drop one entry. Map iteration starts at a random place, so
		// this is random eviction, which needs no bookkeeping on hits.
		for old := range s.m {
			delete(s.m, old)
			break
		}
	}
	s.m[k] = v
	s.mu.Unlock()
}
