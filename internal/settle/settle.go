// Package settle keeps a reload from using files caught in the middle of a
// change. The watcher's debounce waits for events to stop before a reload
// reads the disk, but an edit can still start while the read is under way
// (a truncate-then-write editor, a deploy script writing several files): the
// read then sees an empty or half-written file. Validation rejects most of
// those, but not all: an empty users.yaml, or a file cut at the end of an
// entry, is valid data that would lock users out until the next reload.
//
// Wrap closes that gap. It stamps every watched file (name, size,
// modification time, inode and device, following symlinks) before the read
// and again a quiet interval after it, and only returns what it read when
// nothing moved; otherwise it reads again. What is served has thus been
// unchanged for the quiet interval around the read: the same promise the
// debounce makes, now also about changes that begin during the read.
package settle

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tenantgate/tenantgate/internal/sourcedir"

	"github.com/tenantgate/tenantgate/internal/engine"
	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// MaxAttempts bounds the reads of one Load. Files that keep changing for
// that long are not served: the load fails (the last good snapshot keeps
// serving), and since they changed, the watcher calls for another reload.
const MaxAttempts = 5

// ErrUnsettled is the error of a Load whose files kept changing.
var ErrUnsettled = errors.New("files kept changing while being read")

// Wrap returns a Source that reads src only when its watched files, and
// the extra files, stay unchanged for quiet around the read. quiet <= 0
// returns src itself.
//
// The result is also an engine.Settler: the engine reads each of its
// sources (data, policies, each key file) through Settle, each with its own
// files, so a file that keeps changing holds back only its own source. When
// src is an engine.SplitSource, so is the result.
func Wrap(src engine.Source, quiet time.Duration, extra ...string) engine.Source {
	if quiet <= 0 {
		return src
	}
	s := &source{src: src, quiet: quiet, extra: extra}
	if split, ok := src.(engine.SplitSource); ok {
		return &splitSource{source: s, split: split}
	}
	return s
}

type source struct {
	src   engine.Source
	quiet time.Duration
	extra []string
}

// Watched implements engine.Source.
func (s *source) Watched() []string { return s.src.Watched() }

// Load implements engine.Source.
func (s *source) Load(ctx context.Context) (data *tenant.Data, mods []policy.File, err error) {
	err = s.Settle(ctx, slices.Concat(s.src.Watched(), s.extra), func(ctx context.Context) error {
		data, mods, err = s.src.Load(ctx)
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return data, mods, nil
}

// Settle implements engine.Settler: it calls read, and again while paths
// changed in the quiet interval around it, at most MaxAttempts times. A
// failed read is returned at once, without waiting: it publishes nothing,
// and the change that broke it raises the event that calls for the next
// reload.
func (s *source) Settle(ctx context.Context, paths []string, read func(context.Context) error) error {
	timer := time.NewTimer(s.quiet)
	defer timer.Stop()
	for attempt := 1; ; attempt++ {
		before := Stamp(paths)
		if err := read(ctx); err != nil {
			return err
		}
		timer.Reset(s.quiet)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		if Stamp(paths) == before {
			return nil
		}
		if attempt == MaxAttempts {
			return fmt.Errorf("%w (%d reads of %s, %v apart); the last good version keeps serving",
				ErrUnsettled, attempt, strings.Join(paths, ", "), s.quiet)
		}
	}
}

// splitSource is a settled engine.SplitSource. Its parts are not settled
// here: the engine reads each through Settle with the part's own files.
type splitSource struct {
	*source
	split engine.SplitSource
}

// LoadData implements engine.SplitSource.
func (s *splitSource) LoadData(ctx context.Context) (*tenant.Data, error) {
	return s.split.LoadData(ctx)
}

// LoadPolicies implements engine.SplitSource.
func (s *splitSource) LoadPolicies(ctx context.Context) ([]policy.File, error) {
	return s.split.LoadPolicies(ctx)
}

// DataWatched implements engine.SplitSource.
func (s *splitSource) DataWatched() []string { return s.split.DataWatched() }

// PoliciesWatched implements engine.SplitSource.
func (s *splitSource) PoliciesWatched() []string { return s.split.PoliciesWatched() }

// Stamp digests the state of paths: for a directory, every entry in it; for
// a file, the file. Symlinks are followed (a ConfigMap's ..data swap changes
// the inode behind the same name). Access times are left out, since reading
// a file may change them.
func Stamp(paths []string) string {
	h := sha256.New()
	var b []byte
	for _, p := range paths {
		b = appendStamp(b[:0], p)
		h.Write(b)
		entries, err := os.ReadDir(p)
		if err != nil {
			continue // a file, or gone: its own stamp says which
		}
		for _, e := range entries {
			if !loaded(e.Name()) {
				continue
			}
			b = appendStamp(b[:0], filepath.Join(p, e.Name()))
			h.Write(b)
		}
	}
	return string(h.Sum(nil))
}

// loaded reports whether a directory entry can change what a reload reads:
// the files the loaders read (*.yaml, *.yml, *.rego, not hidden) and a
// ConfigMap's ..data link. Anything else (a log, an editor's swap file, a
// sidecar's scratch file) may change as often as it likes without holding
// reloads back.
func loaded(name string) bool { return sourcedir.IsLoaded(name) }

func appendStamp(b []byte, path string) []byte {
	b = append(b, path...)
	fi, err := os.Stat(path)
	if err != nil {
		b = append(b, " missing "...)
		if errors.Is(err, fs.ErrNotExist) {
			return append(b, '\n')
		}
		return append(append(b, err.Error()...), '\n')
	}
	if !fi.IsDir() {
		// A directory's size and time change with any entry, also one no
		// loader reads; its entries are stamped one by one instead, and its
		// identity below still tells a deleted-and-recreated directory.
		b = append(b, ' ')
		b = strconv.AppendInt(b, fi.Size(), 10)
		b = append(b, ' ')
		b = strconv.AppendInt(b, fi.ModTime().UnixNano(), 10)
	}
	b = append(b, ' ')
	b = strconv.AppendUint(b, uint64(fi.Mode()), 8)
	b = appendIdentity(b, fi)
	return append(b, '\n')
}
