package tenant

import "strings"

// arena re-homes the index's many small strings and string lists into a few
// large allocations. Why: the index lives as long as its snapshot, and the
// garbage collector visits every live object on every cycle of a serving
// process. At 200,000 users the parser leaves ~400,000 small objects (one per
// id, one per list) that took the one core a pinned sidecar has ~30 ms to
// mark each cycle, which showed in its tail latency; packed, they are a few
// dozen. Strings are immutable, so sharing one backing is safe; lists are
// clipped, so an append by a reader copies rather than writing into a
// neighbour.
type arena struct {
	b    strings.Builder
	slab []string
}

const (
	arenaChunk = 64 << 10 // bytes per string chunk
	arenaSlab  = 4096     // strings per list slab
)

// str returns a copy of s that lives in the arena.
func (a *arena) str(s string) string {
	if s == "" {
		return ""
	}
	if a.b.Cap()-a.b.Len() < len(s) {
		// A new chunk. Strings already handed out keep the old one alive;
		// the Builder never writes over bytes it has written.
		a.b.Reset()
		a.b.Grow(max(arenaChunk, len(s)))
	}
	start := a.b.Len()
	a.b.WriteString(s)
	return a.b.String()[start:]
}

// list returns a zeroed, clipped list of n strings carved from a slab, or nil
// for n == 0 (an absent list and an empty one read the same everywhere).
func (a *arena) list(n int) []string {
	if n == 0 {
		return nil
	}
	if len(a.slab) < n {
		a.slab = make([]string, max(arenaSlab, n))
	}
	l := a.slab[:n:n]
	a.slab = a.slab[n:]
	return l
}

// strs copies ss, list and strings, into the arena.
func (a *arena) strs(ss []string) []string {
	l := a.list(len(ss))
	for i, s := range ss {
		l[i] = a.str(s)
	}
	return l
}

// reserve sizes the next chunk and slab to exactly what is about to be
// stored, so that an arena per small file does not hold a whole default
// chunk and slab (128 KiB) for a few ids.
func (a *arena) reserve(bytes, strs int) {
	if bytes > 0 {
		a.b.Reset()
		a.b.Grow(bytes)
	}
	if strs > 0 {
		a.slab = make([]string, strs)
	}
}
