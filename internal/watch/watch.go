// Package watch tells the caller when files it loaded have changed on disk, so
// it can rebuild from disk. It watches directories rather than files (editors
// replace files by rename, Kubernetes swaps a `..data` symlink), follows
// symlinks, batches bursts of events behind a debounce, and survives the
// watched directory being deleted and recreated.
//
// A file written in place is read only once its writer has closed it: a
// writer may pause mid-file for seconds (a slow editor, a script), and half a
// file can be valid and wider than the whole one (a user whose `locations:`
// line is not written yet may go everywhere). On Linux, inotify says when a
// writer closes a file (IN_CLOSE_WRITE), so a reload waits for that after any
// in-place write, up to maxHold. Elsewhere the debounce alone batches writes.
// Renames and symlink swaps are complete when they happen and are only
// debounced.
package watch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultDebounce is the quiet period callers use unless they have a reason
// not to: long enough to batch an editor's or kubelet's burst of events, short
// enough that an edit is in force well within the contract's 1 s (tenantgate help data).
const DefaultDebounce = 100 * time.Millisecond

// maxWaitFactor bounds how long a continuous stream of events can postpone a
// reload: at most this many debounce intervals after the first event of a burst.
const maxWaitFactor = 4

// pollInterval is how often a watched directory that has disappeared is looked
// for again. inotify cannot watch a path that does not exist.
const pollInterval = 250 * time.Millisecond

// maxHold bounds how long a file written in place and still open for writing
// holds reloads back. A writer that pauses longer is not one of the pauses
// the contract means ("seconds"), and every reload waits for it, including
// edits to other files such as a revocation or a key rotation; so past this
// the file is read anyway, as it is, and a warning names it. Validation still
// guards what is read, and the writer's close triggers another reload.
const maxHold = 30 * time.Second

// maxHops bounds symlink chains, as the kernel's MAXSYMLINKS does, so a loop
// ends instead of spinning.
const maxHops = 40

// Watcher calls onChange (from one goroutine, never concurrently) after
// changes under the watched paths settle for the debounce interval, and (on
// Linux) every file written in place among them has been closed by its
// writer. Paths may be directories (changes to entries directly in them) or
// files (watched via their parent directory, since editors replace files by
// rename and Kubernetes ConfigMaps swap a `..data` symlink).
type Watcher struct {
	targets  []target
	debounce time.Duration
	maxWait  time.Duration
	maxHold  time.Duration
	poll     time.Duration
	log      *slog.Logger

	be        backend
	running   atomic.Bool
	closeOnce sync.Once

	// Owned by the goroutine in New, then by the one in Run.
	watched map[string]*filter   // directories handed to the backend, by the exact path given to add
	missing map[string]struct{}  // directories that should be watched but do not exist
	holds   map[string]time.Time // files written in place and not closed since, with when the first write was seen
}

// target is one path the caller asked for.
type target struct {
	path  string // absolute and clean
	isDir bool
}

// filter says which events in one watched directory matter.
type filter struct {
	all   bool                // every entry (a watched data directory)
	names map[string]struct{} // only these entries (a watched file, a symlink on the way to one)
}

func (f *filter) add(name string) {
	if f.names == nil {
		f.names = make(map[string]struct{})
	}
	f.names[name] = struct{}{}
}

// New watches paths (directories or files, which must exist) and starts
// receiving events; call Run to consume them. A bad argument or a path that
// cannot be watched is an error naming the path.
func New(paths []string, debounce time.Duration, logger *slog.Logger) (*Watcher, error) {
	return newWith(paths, debounce, logger, newBackend)
}

// newWith is New with the backend chosen, so tests can run the portable one
// on Linux too.
func newWith(paths []string, debounce time.Duration, logger *slog.Logger, newBE func(*slog.Logger) (backend, error)) (*Watcher, error) {
	if len(paths) == 0 {
		return nil, errors.New("watch: no paths to watch")
	}
	if debounce <= 0 {
		return nil, fmt.Errorf("watch: debounce must be positive, got %v", debounce)
	}
	if logger == nil {
		logger = slog.Default()
	}
	targets := make([]target, 0, len(paths))
	for _, p := range paths {
		if p == "" {
			return nil, errors.New("watch: empty path")
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("watch: %s: %w", p, err)
		}
		st, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("watch: %w", err)
		}
		targets = append(targets, target{path: abs, isDir: st.IsDir()})
	}

	be, err := newBE(logger)
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &Watcher{
		targets:  targets,
		debounce: debounce,
		maxWait:  maxWaitFactor * debounce,
		maxHold:  maxHold,
		poll:     pollInterval,
		log:      logger,
		be:       be,
		watched:  map[string]*filter{},
		missing:  map[string]struct{}{},
		holds:    map[string]time.Time{},
	}

	// At start every directory exists (the paths were just stat'ed), so a
	// failure here is a real problem (permissions, inotify limits): fail
	// closed rather than run without hot reload.
	err = w.sync()
	for dir := range w.missing {
		// Gone between the stat above and now.
		err = errors.Join(err, fmt.Errorf("watch: %s: %w", dir, fs.ErrNotExist))
	}
	if err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

// Run delivers batched change notifications until ctx is cancelled, then
// releases the watches and returns nil. onChange receives nothing: the
// caller rebuilds everything from disk (that is what makes batching correct).
// Run may be called once.
func (w *Watcher) Run(ctx context.Context, onChange func()) error {
	if onChange == nil {
		return errors.New("watch: Run: onChange is nil")
	}
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("watch: Run called more than once")
	}
	defer w.close()

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		pending    bool
		burstStart time.Time
		ticker     *time.Ticker
		pollC      <-chan time.Time
	)
	// The ticker runs only while something is missing, so an idle watcher
	// costs nothing.
	updatePoll := func() {
		switch {
		case len(w.missing) > 0 && ticker == nil:
			ticker = time.NewTicker(w.poll)
			pollC = ticker.C
		case len(w.missing) == 0 && ticker != nil:
			ticker.Stop()
			ticker, pollC = nil, nil
		}
	}
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	updatePoll()

	// schedule restarts the quiet period, but never past maxWait after the
	// burst began, so a file rewritten continuously still gets reloaded
	// (each rewrite closed; one still open is held, see held).
	schedule := func() {
		now := time.Now()
		if !pending {
			pending, burstStart = true, now
		}
		wait := w.debounce
		if rest := burstStart.Add(w.maxWait).Sub(now); rest < wait {
			wait = max(rest, 0)
		}
		timer.Reset(wait)
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.be.events():
			if !ok {
				// Only close() closes it, and that runs after we return,
				// unless the backend failed (it logged why).
				return errors.New("watch: notification channel closed")
			}
			if w.relevant(ev.name) {
				w.track(ev)
				schedule()
			}
		case <-w.be.overflow():
			// Holds stay: a close that was dropped ends them at maxHold,
			// which is slow but never reads a file mid-write.
			schedule()
		case <-pollC:
			if w.anyMissingBack() {
				schedule()
			}
		case <-timer.C:
			if until, ok := w.held(time.Now()); ok {
				// A writer still has a file open: wait for its close (an
				// event, which reschedules) or for the hold to run out.
				timer.Reset(time.Until(until))
				continue
			}
			pending = false
			// Re-resolve and re-add watches before onChange reads the disk:
			// a change after the re-add raises a new event, a change before
			// it is seen by onChange's read, so nothing falls in between.
			if err := w.sync(); err != nil {
				w.log.Warn("watch: some paths cannot be watched", "err", err)
			}
			updatePoll()
			onChange()
		}
	}
}

// Close releases a Watcher that will not be Run (Run releases its own when
// it returns): a server that fails to start after creating one.
func (w *Watcher) Close() { w.close() }

// close releases the backend and waits for its goroutines, so nothing logs
// after Run has returned.
func (w *Watcher) close() {
	w.closeOnce.Do(func() {
		if err := w.be.close(); err != nil {
			w.log.Warn("watch: closing the file notifications", "err", err)
		}
	})
}

// track updates the holds for one relevant event. A file written in place
// (or created, which its creator does holding it open) is held until its
// writer closes it; a name that stops naming that file (deleted, renamed
// away or replaced by a rename) is released, since what a reload reads under
// it is no longer being written.
func (w *Watcher) track(ev event) {
	switch ev.kind {
	case written:
		w.hold(ev.name)
	case created:
		// A symlink or a directory is complete when created; no close comes.
		if fi, err := os.Lstat(ev.name); err == nil && fi.Mode().IsRegular() {
			w.hold(ev.name)
		}
	case closed, gone:
		if since, ok := w.holds[ev.name]; ok {
			delete(w.holds, ev.name)
			w.log.Debug("watch: writer done", "file", ev.name, "after", time.Since(since).Round(time.Millisecond))
		}
	}
}

func (w *Watcher) hold(name string) {
	if _, ok := w.holds[name]; ok || !w.holdable(name) {
		return
	}
	w.holds[name] = time.Now()
	w.log.Debug("watch: file written in place; waiting for its writer to close it", "file", name)
}

// holdable reports whether a write to name may hold reloads back: a watched
// file, or an entry of a watched directory that is not hidden. Hidden names
// (an editor's swap or lock file, a temporary file renamed into place, a
// ConfigMap's `..` entries) are read by no loader, and an editor keeps its
// swap file open for the whole session.
func (w *Watcher) holdable(name string) bool {
	f := w.watched[filepath.Dir(name)]
	if f == nil {
		return false
	}
	base := filepath.Base(name)
	if _, ok := f.names[base]; ok {
		return true
	}
	return f.all && !strings.HasPrefix(base, ".")
}

// held drops the holds older than maxHold, warning about each, and reports
// when the earliest remaining one runs out, if any remain.
func (w *Watcher) held(now time.Time) (until time.Time, ok bool) {
	for name, since := range w.holds {
		end := since.Add(w.maxHold)
		if !now.Before(end) {
			w.log.Warn("watch: file still open for writing; reading it as it is",
				"file", name, "written_since", now.Sub(since).Round(time.Millisecond), "max_wait", w.maxHold)
			delete(w.holds, name)
			continue
		}
		if !ok || end.Before(until) {
			until, ok = end, true
		}
	}
	return until, ok
}

// relevant reports whether an event on name can change what the caller loads.
func (w *Watcher) relevant(name string) bool {
	// The watched directory itself was removed or moved away.
	if _, ok := w.watched[name]; ok {
		return true
	}
	f := w.watched[filepath.Dir(name)]
	if f == nil {
		return false
	}
	if f.all {
		return true
	}
	_, ok := f.names[filepath.Base(name)]
	return ok
}

// anyMissingBack reports whether a directory that was gone exists again.
func (w *Watcher) anyMissingBack() bool {
	for dir := range w.missing {
		if st, err := os.Stat(dir); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// sync makes the backend's watches match what the targets resolve to now. A
// directory that does not exist goes into w.missing, not into the error.
// Every wanted directory is added again, even if it was watched before: if it
// was deleted and recreated, the old inotify watch is gone, and adding an
// existing watch is harmless.
func (w *Watcher) sync() error {
	want := w.desired()
	for dir := range w.watched {
		if _, ok := want[dir]; !ok {
			// It may already be gone with its directory; nothing to undo then.
			_ = w.be.remove(dir)
		}
	}
	wasMissing := w.missing
	w.missing = make(map[string]struct{})
	var errs []error
	for dir := range want {
		err := w.be.add(dir)
		if err == nil {
			if _, ok := wasMissing[dir]; ok {
				w.log.Info("watch: directory is back, watching it again", "dir", dir)
			}
			continue
		}
		delete(want, dir)
		if errors.Is(err, fs.ErrNotExist) {
			// Expected while a directory is being replaced; polled, not an error.
			w.missing[dir] = struct{}{}
			if _, ok := wasMissing[dir]; !ok {
				w.log.Warn("watch: directory is gone, polling until it is back", "dir", dir, "every", w.poll)
			}
			continue
		}
		errs = append(errs, fmt.Errorf("watch: %s: %w", dir, err))
	}
	w.watched = want
	for name := range w.holds {
		// A directory no longer read (a ConfigMap's old timestamped one):
		// its writers hold nothing back.
		if _, ok := want[filepath.Dir(name)]; !ok {
			delete(w.holds, name)
		}
	}
	return errors.Join(errs...)
}

// desired computes, from the disk as it is now, the directories to watch and
// which of their entries matter.
func (w *Watcher) desired() map[string]*filter {
	want := make(map[string]*filter)
	get := func(dir string) *filter {
		f := want[dir]
		if f == nil {
			f = &filter{}
			want[dir] = f
		}
		return f
	}
	for _, t := range w.targets {
		if !t.isDir {
			// The file's parent is walked too, so a symlinked parent that
			// gets retargeted is noticed in the grandparent.
			parent := filepath.Dir(t.path)
			links, _ := chain(filepath.Dir(parent), filepath.Join(filepath.Base(parent), filepath.Base(t.path)))
			for _, l := range links {
				get(l.dir).add(l.name)
			}
			continue
		}
		links, root := chain(filepath.Dir(t.path), filepath.Base(t.path))
		get(root).all = true
		for _, l := range links {
			if filepath.Join(l.dir, l.name) != root {
				// A symlink on the way to the directory: its swap changes
				// which directory we read.
				get(l.dir).add(l.name)
			}
		}
		// Entries that are symlinks into other directories: a change there
		// raises no event here, so watch where they lead.
		entries, err := os.ReadDir(root)
		if err != nil {
			continue // the directory is missing: sync polls for it
		}
		for _, e := range entries {
			if e.Type()&fs.ModeSymlink == 0 {
				continue
			}
			if st, err := os.Stat(filepath.Join(root, e.Name())); err == nil && st.IsDir() {
				continue // subdirectories are not read (this skips a ConfigMap's `..data`)
			}
			sub, _ := chain(root, e.Name())
			for _, l := range sub {
				if l.dir != root {
					get(l.dir).add(l.name)
				}
			}
		}
	}
	return want
}

// link is one directory entry whose change can change what a path resolves to
// or reads: a symlink met on the way, or the final entry.
type link struct {
	dir  string // resolved, so it is what the backend reports
	name string
}

// chain follows rel from the directory from the way the kernel does and
// returns every symlink met on the way plus the final entry, each in its
// resolved directory, and the fully resolved path. Symlinks among from's own
// ancestors are resolved silently: they are the caller's fixed layout. Where a
// component is missing, the walk stops there and the last link is the missing
// entry, so its creation is noticed.
func chain(from, rel string) (links []link, resolved string) {
	pending := splitPath(rel)
	base, err := filepath.EvalSymlinks(from)
	if err != nil {
		// from itself is missing: the caller polls for it.
		base = filepath.Clean(from)
		if len(pending) > 0 {
			links = append(links, link{dir: base, name: pending[0]})
		}
		return links, filepath.Join(append([]string{base}, pending...)...)
	}
	hops := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case ".":
			continue
		case "..":
			base = filepath.Dir(base) // base has no symlinks, so this is the real parent
			continue
		}
		full := filepath.Join(base, c)
		fi, err := os.Lstat(full)
		if err != nil {
			links = append(links, link{dir: base, name: c})
			return links, filepath.Join(append([]string{full}, pending...)...)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if len(pending) == 0 {
				links = append(links, link{dir: base, name: c})
			}
			base = full
			continue
		}
		links = append(links, link{dir: base, name: c})
		hops++
		target, err := os.Readlink(full)
		if err != nil || hops > maxHops {
			// Unreadable or a loop: the reader will fail on it too, and the
			// link itself is watched, so fixing it is noticed.
			return links, full
		}
		if filepath.IsAbs(target) {
			base = filepath.VolumeName(target) + string(filepath.Separator)
		}
		pending = append(splitPath(target), pending...)
	}
	return links, base
}

// splitPath splits a slash-separated path into its non-empty components.
func splitPath(p string) []string {
	parts := strings.Split(filepath.ToSlash(p), "/")
	out := parts[:0]
	for _, s := range parts {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
