package watch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// On Linux the watcher uses inotify directly: fsnotify (v1.10) does not
// export IN_CLOSE_WRITE, and without it a writer that pauses mid-file cannot
// be told from one that has finished.
func newBackend(log *slog.Logger) (backend, error) { return newInotify(log) }

// inotifyMask is what every watched directory reports: changes to its
// entries, writers closing them, and the directory itself going away.
// IN_ONLYDIR because only directories are watched: a file in their place
// is an error rather than a silently different watch.
const inotifyMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MODIFY | unix.IN_ATTRIB |
	unix.IN_CLOSE_WRITE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

type inotify struct {
	fd   int      // the raw descriptor, for add and rm_watch: f.Fd() would make f blocking
	f    *os.File // non-blocking, so Close wakes a pending Read
	ev   chan event
	ovf  chan struct{}
	stop chan struct{}
	done chan struct{} // closed when the reader has ended
	log  *slog.Logger

	mu     sync.Mutex
	closed bool
	dirs   map[string]int // watched directory -> watch descriptor
	wds    map[int]string // watch descriptor -> directory, as events name it
}

func newInotify(log *slog.Logger) (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify_init1: %w", err)
	}
	b := &inotify{
		fd:   fd,
		f:    os.NewFile(uintptr(fd), "inotify"),
		ev:   make(chan event, 64),
		ovf:  make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
		log:  log,
		dirs: map[string]int{},
		wds:  map[int]string{},
	}
	go b.read()
	return b, nil
}

func (b *inotify) events() <-chan event      { return b.ev }
func (b *inotify) overflow() <-chan struct{} { return b.ovf }

func (b *inotify) add(dir string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return os.ErrClosed
	}
	wd, err := unix.InotifyAddWatch(b.fd, dir, inotifyMask)
	if err != nil {
		// Errno matches fs.ErrNotExist for ENOENT, which sync relies on.
		return &os.PathError{Op: "inotify_add_watch", Path: dir, Err: err}
	}
	if old, ok := b.dirs[dir]; ok && old != wd {
		// The directory was recreated: the old watch went with it.
		delete(b.wds, old)
	}
	b.dirs[dir] = wd
	b.wds[wd] = dir
	return nil
}

func (b *inotify) remove(dir string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	wd, ok := b.dirs[dir]
	if !ok || b.closed {
		return nil
	}
	delete(b.dirs, dir)
	for d, w := range b.dirs {
		if w == wd {
			// Another path reaches the same directory and shares the
			// descriptor: keep it, named by that path.
			b.wds[wd] = d
			return nil
		}
	}
	delete(b.wds, wd)
	// EINVAL: the kernel already dropped it (the directory was deleted).
	if _, err := unix.InotifyRmWatch(b.fd, uint32(wd)); err != nil && !errors.Is(err, unix.EINVAL) {
		return &os.PathError{Op: "inotify_rm_watch", Path: dir, Err: err}
	}
	return nil
}

func (b *inotify) close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.done
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	err := b.f.Close() // wakes the reader
	<-b.done
	return err
}

// read turns what the kernel queues into events until close.
func (b *inotify) read() {
	defer close(b.done)
	defer close(b.ev)
	// Room for many events per read; one event is at most a header plus
	// NAME_MAX+1 bytes of name, which always fits.
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := b.f.Read(buf)
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				b.log.Error("watch: reading inotify events failed; files are no longer watched", "err", err)
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			wd := int(int32(binary.NativeEndian.Uint32(buf[off:])))
			mask := binary.NativeEndian.Uint32(buf[off+4:])
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			off += unix.SizeofInotifyEvent
			end := min(off+nameLen, n)
			name := strings.TrimRight(string(buf[off:end]), "\x00")
			off = end
			if !b.handle(wd, mask, name) {
				return
			}
		}
	}
}

// handle delivers one kernel event, and reports false once closed.
func (b *inotify) handle(wd int, mask uint32, name string) bool {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		b.log.Warn("watch: inotify queue overflowed; reloading to catch up")
		select {
		case b.ovf <- struct{}{}:
		default: // a reload is already due
		}
		return true
	}
	b.mu.Lock()
	dir, ok := b.wds[wd]
	if ok && mask&unix.IN_IGNORED != 0 {
		// The kernel dropped the watch (the directory was deleted, or
		// rm_watch). A recreated directory has a new descriptor already.
		delete(b.wds, wd)
		if b.dirs[dir] == wd {
			delete(b.dirs, dir)
		}
	}
	if ok && mask&unix.IN_MOVE_SELF != 0 && !b.closed {
		// The directory moved away, but its watch would follow it and
		// report events from elsewhere under this name: drop it. sync adds
		// whatever is at the path now.
		_, _ = unix.InotifyRmWatch(b.fd, uint32(wd))
	}
	b.mu.Unlock()
	if !ok || mask&unix.IN_IGNORED != 0 {
		return true
	}

	ev := event{name: dir, kind: change}
	if name != "" {
		ev.name = filepath.Join(dir, name)
	}
	switch {
	case mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_UNMOUNT) != 0:
		ev.name = dir
	case mask&unix.IN_CLOSE_WRITE != 0:
		ev.kind = closed
	case mask&unix.IN_MODIFY != 0:
		ev.kind = written
	case mask&unix.IN_CREATE != 0 && mask&unix.IN_ISDIR == 0:
		ev.kind = created
	case mask&(unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_MOVED_TO) != 0:
		ev.kind = gone
	}
	select {
	case b.ev <- ev:
		return true
	case <-b.stop:
		return false
	}
}
