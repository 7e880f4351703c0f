// Package decisionlog writes one JSON line per authorization decision, to
// stdout or to a file, for audits and for dry-run rollouts. It is an
// engine.Observer, so it runs on every request: a line is encoded into a
// pooled buffer without reflection and handed to a writer goroutine through
// a bounded queue. A slow or failing disk never delays a decision: when the
// queue is full the line is dropped and counted, and write errors are
// counted and logged, never fatal. A file log is bounded in size and
// rotated (PATH, PATH.1, ... PATH.N) by that same goroutine, so traffic
// cannot fill a disk. The token is never written: the Authorization header
// is not a field.
package decisionlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tenantgate/tenantgate/internal/engine"
)

// Stdout is the path that means standard output.
const Stdout = "-"

// FileMode is the mode a new log file is created with (before the umask):
// decision logs name users and tenants, so they are not world-readable.
const FileMode = 0o640

const (
	// DefaultMaxSize is a file log's size bound: about 350,000 lines of
	// ~300 bytes, hours of an ordinary portal's traffic per file, while with
	// DefaultMaxFiles the log takes at most 400 MiB of disk, which a
	// sidecar's volume can be sized for.
	DefaultMaxSize = 100 << 20
	// DefaultMaxFiles is how many rotated files are kept beside the current
	// one: enough to read the minutes before a rotation during an incident.
	DefaultMaxFiles = 3

	defaultQueueSize        = 4096
	defaultReopenInterval   = time.Second
	defaultErrorLogInterval = 10 * time.Second
	defaultCloseTimeout     = 5 * time.Second

	// maxBatch bounds the bytes handed to one write call.
	maxBatch = 64 << 10
	// maxPooledLine keeps a line buffer grown by a huge path out of the pool.
	maxPooledLine = 16 << 10
)

// Options tunes a Log; the zero value is the production setting.
type Options struct {
	// QueueSize is how many lines may wait for the writer; beyond it lines
	// are dropped (tenantgate_decision_log_dropped_total). Default 4096.
	QueueSize int
	Logger    *slog.Logger
	// ReopenInterval is how often a file log checks that its path still
	// names the open file (logrotate renamed or someone removed it) and
	// reopens it if not. Default 1 s.
	ReopenInterval time.Duration
	// ErrorLogInterval rate-limits the error log of failed writes; every
	// failure is counted regardless. Default 10 s.
	ErrorLogInterval time.Duration
	// CloseTimeout bounds how long Close waits for the queue to be written.
	// Default 5 s.
	CloseTimeout time.Duration
	// MaxSize bounds a file log, in bytes: a batch that would take the file
	// past it is split at a line, the file renamed PATH.1 (PATH.1 to PATH.2,
	// and so on; the oldest beyond MaxFiles is removed) and a new one
	// started. Lines are never split, so one line longer than the bound is
	// written alone to a fresh file. Standard output and a writer given to
	// New are never rotated. 0: DefaultMaxSize; negative: no bound (logrotate
	// then rotates; see checkFile).
	MaxSize int64
	// MaxFiles is how many rotated files (PATH.1 ... PATH.N) are kept.
	// 0: DefaultMaxFiles; negative: none (a full file is removed).
	MaxFiles int
}

// Log is a running decision log. It implements engine.Observer and is safe
// for concurrent use.
type Log struct {
	opts  Options
	path  string // the file, or "" when writing to a given writer
	queue chan *line
	pool  sync.Pool

	closeOnce sync.Once
	closed    atomic.Bool
	done      chan struct{} // closed by Close: drain and stop
	exited    chan struct{} // closed when the writer goroutine has returned
	closeErr  error         // set by the writer goroutine before exited

	dropped atomic.Uint64
	errs    atomic.Uint64

	// Owned by the writer goroutine.
	out       io.Writer
	file      *os.File // nil when not writing to a file we opened
	fileInfo  os.FileInfo
	size      int64 // bytes in the open file, as far as we know
	reopen    bool  // a write failed: reopen at the next check
	lastErrAt time.Time
	muted     int // failures not logged since lastErrAt
}

type line struct{ b []byte }

// Open starts a decision log at path: "-" is standard output, anything else
// a file opened for appending (created with mode 0640). A file that cannot
// be opened is an error naming it.
func Open(path string, opts Options) (*Log, error) {
	if path == "" {
		return nil, errors.New("decision log: empty path")
	}
	if path == Stdout {
		return New(os.Stdout, opts), nil
	}
	l := newLog(opts)
	l.path = path
	if err := l.openFile(); err != nil {
		return nil, err
	}
	go l.run()
	return l, nil
}

// New starts a decision log writing to w (which it does not close).
func New(w io.Writer, opts Options) *Log {
	l := newLog(opts)
	l.out = w
	go l.run()
	return l
}

func newLog(opts Options) *Log {
	if opts.QueueSize <= 0 {
		opts.QueueSize = defaultQueueSize
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.ReopenInterval <= 0 {
		opts.ReopenInterval = defaultReopenInterval
	}
	if opts.ErrorLogInterval <= 0 {
		opts.ErrorLogInterval = defaultErrorLogInterval
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = defaultCloseTimeout
	}
	if opts.MaxSize == 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.MaxFiles == 0 {
		opts.MaxFiles = DefaultMaxFiles
	}
	l := &Log{
		opts:   opts,
		queue:  make(chan *line, opts.QueueSize),
		done:   make(chan struct{}),
		exited: make(chan struct{}),
	}
	l.pool.New = func() any { return &line{b: make([]byte, 0, 512)} }
	return l
}

// ObserveDecision implements engine.Observer: it encodes the line and
// queues it, or drops it when the queue is full. It never blocks.
func (l *Log) ObserveDecision(req *engine.Request, res *engine.Result, elapsed time.Duration) {
	if l.closed.Load() {
		l.dropped.Add(1)
		return
	}
	ln := l.pool.Get().(*line)
	ln.b = appendEntry(ln.b[:0], time.Now(), newID(), req, res, elapsed)
	select {
	case l.queue <- ln:
	default:
		l.dropped.Add(1)
		l.put(ln)
	}
}

// ObserveReload implements engine.Observer; reloads are not decisions (the
// revision on every line says which snapshot answered).
func (l *Log) ObserveReload(*engine.Snapshot, error) {}

// Dropped is how many lines were dropped because the queue was full (or the
// log was closed).
func (l *Log) Dropped() uint64 { return l.dropped.Load() }

// Errors is how many writes (and reopens) failed.
func (l *Log) Errors() uint64 { return l.errs.Load() }

// Register adds tenantgate_decision_log_dropped_total and
// tenantgate_decision_log_errors_total to reg (metrics.Metrics.Registry()).
func (l *Log) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tenantgate_decision_log_dropped_total",
			Help: "Decision log lines dropped because the writer fell behind (the queue was full).",
		}, func() float64 { return float64(l.dropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "tenantgate_decision_log_errors_total",
			Help: "Decision log writes, reopens and rotations that failed (the lines of a failed write are lost).",
		}, func() float64 { return float64(l.errs.Load()) }),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("decision log metrics: %w", err)
		}
	}
	return nil
}

// Close writes what is queued, then closes the file (never stdout or a
// writer given to New). Lines observed after Close are dropped. It waits at
// most Options.CloseTimeout for a stuck writer. Close may be called more
// than once; later calls return nil.
func (l *Log) Close() error {
	first := false
	l.closeOnce.Do(func() {
		first = true
		l.closed.Store(true)
		close(l.done)
	})
	if !first {
		return nil
	}
	select {
	case <-l.exited:
	case <-time.After(l.opts.CloseTimeout):
		return fmt.Errorf("decision log %s: the writer did not finish within %v; queued lines are lost",
			l.name(), l.opts.CloseTimeout)
	}
	// An ObserveDecision that raced with Close may have queued a line after
	// the writer's last drain: it is counted, not silently lost.
	for {
		select {
		case <-l.queue:
			l.dropped.Add(1)
		default:
			return l.closeErr
		}
	}
}

func (l *Log) name() string {
	if l.path == "" {
		return "(writer)"
	}
	return l.path
}

func (l *Log) put(ln *line) {
	if cap(ln.b) <= maxPooledLine {
		l.pool.Put(ln)
	}
}

// run is the writer goroutine: it batches whatever is queued into one write,
// and checks the file's identity every ReopenInterval.
func (l *Log) run() {
	defer close(l.exited)
	var tick <-chan time.Time
	if l.path != "" {
		t := time.NewTicker(l.opts.ReopenInterval)
		defer t.Stop()
		tick = t.C
	}
	batch := make([]byte, 0, maxBatch)
	for {
		select {
		case ln := <-l.queue:
			batch = l.take(batch, ln)
			batch = l.drain(batch, maxBatch)
			l.write(batch)
			batch = batch[:0]
		case <-tick:
			l.checkFile()
		case <-l.done:
			for {
				batch = l.drain(batch, maxBatch)
				if len(batch) == 0 {
					break
				}
				l.write(batch)
				batch = batch[:0]
			}
			if l.file != nil {
				if err := l.file.Close(); err != nil {
					l.closeErr = fmt.Errorf("decision log %s: %w", l.path, err)
				}
			}
			return
		}
	}
}

// take appends a queued line to batch and recycles its buffer.
func (l *Log) take(batch []byte, ln *line) []byte {
	batch = append(batch, ln.b...)
	l.put(ln)
	return batch
}

// drain appends lines that are already queued, without waiting, until the
// batch holds limit bytes.
func (l *Log) drain(batch []byte, limit int) []byte {
	for len(batch) < limit {
		select {
		case ln := <-l.queue:
			batch = l.take(batch, ln)
		default:
			return batch
		}
	}
	return batch
}

// write writes batch, rotating the file first whenever the next lines would
// take it past MaxSize. Lines keep their order: they are written in turn by
// this one goroutine, and a file ends where the next one starts.
func (l *Log) write(batch []byte) {
	for len(batch) > 0 {
		n := l.fitting(batch)
		if n == 0 && l.size > 0 && l.rotate() {
			continue // a fresh, empty file
		}
		if n == 0 {
			if l.size > 0 {
				// The rotation failed (logged): the file grows past the
				// bound rather than lose lines; the next batch retries.
				n = len(batch)
			} else {
				// One line longer than the bound: it gets a file of its own.
				n = bytes.IndexByte(batch, '\n') + 1
				if n == 0 {
					n = len(batch)
				}
			}
		}
		l.writeOut(batch[:n])
		batch = batch[n:]
	}
}

// fitting is how many leading bytes of batch, whole lines, fit in the open
// file under MaxSize: all of them when the log is not a bounded file.
func (l *Log) fitting(batch []byte) int {
	if l.path == "" || l.opts.MaxSize < 0 {
		return len(batch)
	}
	room := l.opts.MaxSize - l.size
	if room >= int64(len(batch)) {
		return len(batch)
	}
	if room <= 0 {
		return 0
	}
	return bytes.LastIndexByte(batch[:room], '\n') + 1
}

func (l *Log) writeOut(b []byte) {
	n, err := l.out.Write(b)
	l.size += int64(n)
	if err != nil {
		l.fail(fmt.Errorf("decision log %s: write: %w", l.name(), err))
		l.reopen = l.file != nil
	}
}

// rotate renames PATH.i to PATH.i+1 from the oldest kept down (a rename
// replaces the oldest), PATH to PATH.1, and opens a new PATH. It runs on the
// writer goroutine, never on the decision path: while it runs, lines wait
// in the queue. A failed rename is logged and counted; rotate reports
// whether the open file may now be written from empty.
func (l *Log) rotate() bool {
	for i := l.opts.MaxFiles - 1; i >= 1; i-- {
		// A gap (PATH.2 missing) is no failure; any other error leaves
		// that older file where it was, and the newer ones still move.
		if err := os.Rename(l.rotated(i), l.rotated(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			l.failRotate(err)
		}
	}
	var err error
	if l.opts.MaxFiles > 0 {
		err = os.Rename(l.path, l.rotated(1))
	} else {
		err = os.Remove(l.path)
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.failRotate(err)
		return false
	}
	old := l.file
	if err := l.openFile(); err != nil {
		// The old file, already renamed, takes the lines until the next
		// check reopens the path (within ReopenInterval); counting it as
		// empty keeps this from renaming every kept file again meanwhile.
		l.fail(err)
		l.reopen, l.size = true, 0
		return true
	}
	if old != nil {
		_ = old.Close()
	}
	l.opts.Logger.Info("decision log rotated", "file", l.path, "max_size", l.opts.MaxSize, "kept", max(l.opts.MaxFiles, 0))
	return true
}

// rotated is the name of the i-th newest rotated file.
func (l *Log) rotated(i int) string { return l.path + "." + strconv.Itoa(i) }

// checkFile reopens the file when its path no longer names the open file
// (renamed by logrotate, removed) or after a write failed.
func (l *Log) checkFile() {
	if l.path == "" {
		return
	}
	if !l.reopen {
		st, err := os.Stat(l.path)
		if err == nil && os.SameFile(st, l.fileInfo) {
			// logrotate's copytruncate empties the file under us.
			l.size = st.Size()
			return
		}
	}
	rotated := !l.reopen
	old := l.file
	if err := l.openFile(); err != nil {
		l.fail(err)
		return
	}
	l.reopen = false
	if old != nil {
		_ = old.Close()
	}
	// A reopen after a failed write is not news: the failure was logged
	// (rate-limited), and a full disk would otherwise log this every second.
	if rotated {
		l.opts.Logger.Info("decision log reopened: the file was rotated or removed", "file", l.path)
	}
}

// openFile opens (creating) the path for appending and makes it the output.
func (l *Log) openFile() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, FileMode)
	if err != nil {
		return fmt.Errorf("decision log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("decision log: %s: %w", l.path, err)
	}
	if perm := st.Mode().Perm(); perm&0o007 != 0 && !os.SameFile(st, l.fileInfo) {
		// An existing file keeps its mode (O_CREATE's applies to a new one
		// only); say so once per file rather than change an operator's choice.
		l.opts.Logger.Warn("decision log file is readable or writable by every local user; it names users and tenants",
			"file", l.path, "mode", perm.String(), "fix", "chmod o-rwx "+l.path)
	}
	l.file, l.fileInfo, l.out, l.size = f, st, f, st.Size()
	return nil
}

// fail counts a failure that loses lines and logs it, at most once per
// ErrorLogInterval.
func (l *Log) fail(err error) {
	l.failed("decision log failing; decisions are unaffected, lines are lost", err)
}

// failRotate counts a failed rotation (no line is lost) and logs it like fail.
func (l *Log) failRotate(err error) {
	l.failed("decision log rotation failing; decisions are unaffected, the file grows past its size bound", err)
}

func (l *Log) failed(msg string, err error) {
	l.errs.Add(1)
	now := time.Now()
	if !l.lastErrAt.IsZero() && now.Sub(l.lastErrAt) < l.opts.ErrorLogInterval {
		l.muted++
		return
	}
	l.opts.Logger.Error(msg, "file", l.name(), "error", err, "failures_not_logged", l.muted)
	l.lastErrAt, l.muted = now, 0
}
