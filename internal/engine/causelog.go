package engine

import (
	"log/slog"
	"sync"
	"time"
)

// causeLogInterval is how often one cause of a deny (a token expired, a
// path with a raw space) may be logged: often enough to see what clients
// send, rarely enough that a flood of bad requests cannot flood the log.
const causeLogInterval = time.Minute

// causeLog logs a deny's cause at info level at most once per cause per
// interval, with how many more there were since the last line. Causes are a
// small fixed set (identity.Cause, the path checks), so the map stays small.
type causeLog struct {
	mu   sync.Mutex
	last map[string]causeSeen
	now  func() time.Time // nil: time.Now (tests set a clock)
}

type causeSeen struct {
	at         time.Time
	suppressed int
}

// log writes msg for cause unless that cause was logged within the
// interval, in which case it only counts it. Only denies get here (a bad
// token, a bad path): never the path of an allowed request.
func (c *causeLog) log(l *slog.Logger, cause, msg string, attrs ...any) {
	now := time.Now()
	if c.now != nil {
		now = c.now()
	}
	c.mu.Lock()
	if c.last == nil {
		c.last = map[string]causeSeen{}
	}
	seen, ok := c.last[cause]
	if ok && now.Sub(seen.at) < causeLogInterval {
		seen.suppressed++
		c.last[cause] = seen
		c.mu.Unlock()
		return
	}
	c.last[cause] = causeSeen{at: now}
	c.mu.Unlock()
	if seen.suppressed > 0 {
		attrs = append(attrs, "more_since_last_logged", seen.suppressed)
	}
	l.Info(msg, append([]any{"cause", cause}, attrs...)...)
}
