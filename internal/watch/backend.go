package watch

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/fsnotify/fsnotify"
)

// kind is what an event says happened to its entry. Only the Linux backend
// tells writes and closes apart; the portable one reports every event as
// change, which leaves the debounce alone to batch in-place writes.
type kind uint8

const (
	// change: an entry appeared, changed its metadata, or the watched
	// directory itself went away.
	change kind = iota
	// gone: the name no longer refers to the file it did (deleted, renamed
	// away, or replaced by a rename): whoever still writes the old file no
	// longer writes what a reload reads.
	gone
	// created: a regular file (or a hard link) was created in place; its
	// creator normally holds it open for writing.
	created
	// written: the file was written or truncated in place; more writes may
	// follow until its writer closes it.
	written
	// closed: a writer closed the file (inotify's IN_CLOSE_WRITE).
	closed
)

// event is one filesystem notification: name is the changed entry's path, or
// the watched directory's own path when the directory itself was removed or
// moved.
type event struct {
	name string
	kind kind
}

// backend is the kernel notification mechanism: inotify on Linux, where it
// reports writers closing files, fsnotify elsewhere.
type backend interface {
	// add starts watching the entries of dir, a directory; adding one already
	// watched is harmless. A missing dir is an error matching fs.ErrNotExist.
	add(dir string) error
	// remove stops watching dir; a dir not watched is not an error.
	remove(dir string) error
	// events delivers notifications. It is closed only after close, or when
	// the backend failed and will deliver nothing more.
	events() <-chan event
	// overflow receives when the kernel dropped events: something changed,
	// nothing tells what.
	overflow() <-chan struct{}
	// close releases the backend; no event is delivered after it returns.
	close() error
}

// portable is the fsnotify backend: every platform, no close events.
type portable struct {
	fsw  *fsnotify.Watcher
	ev   chan event
	ovf  chan struct{}
	stop chan struct{}
	done sync.WaitGroup
	log  *slog.Logger
}

func newPortable(log *slog.Logger) (backend, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	p := &portable{fsw: fsw, ev: make(chan event, 64), ovf: make(chan struct{}, 1), stop: make(chan struct{}), log: log}
	// Errors are drained on their own goroutine: fsnotify can send an error
	// while holding the lock that Add needs, so draining them from the
	// goroutine that calls Add could deadlock.
	p.done.Go(p.drainErrors)
	p.done.Go(p.forward)
	return p, nil
}

func (p *portable) add(dir string) error      { return p.fsw.Add(dir) }
func (p *portable) remove(dir string) error   { return p.fsw.Remove(dir) }
func (p *portable) events() <-chan event      { return p.ev }
func (p *portable) overflow() <-chan struct{} { return p.ovf }

func (p *portable) close() error {
	close(p.stop)
	err := p.fsw.Close()
	p.done.Wait()
	return err
}

func (p *portable) forward() {
	defer close(p.ev)
	for {
		select {
		case <-p.stop:
			return
		case ev, ok := <-p.fsw.Events:
			if !ok {
				return
			}
			k := change
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				k = gone
			}
			select {
			case p.ev <- event{name: ev.Name, kind: k}:
			case <-p.stop:
				return
			}
		}
	}
}

func (p *portable) drainErrors() {
	for err := range p.fsw.Errors {
		if errors.Is(err, fsnotify.ErrEventOverflow) {
			select {
			case p.ovf <- struct{}{}:
			default: // a reload is already due
			}
		}
		p.log.Warn("watch: filesystem notification error", "err", err)
	}
}
