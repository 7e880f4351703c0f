package soak

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// flipper owns the data directory. It is laid out as a Kubernetes ConfigMap
// volume (..data -> ..vNNNN, base.yaml -> ..data/base.yaml), and
// tenants.yaml is either a symlink into ..data too or a regular file,
// depending on how it was last written. Moving between the two layouts is
// done with content-preserving atomic steps, so every state on disk is a
// whole version (or a half-written file, which must fail validation).
type flipper struct {
	dir     string
	current which  // the last valid version written
	onDisk  string // what tenants.yaml holds now
	isLink  bool   // tenants.yaml is a symlink into ..data
	seq     int    // the ..vNNNN counter
	verDir  string // the ..data target now
}

func newFlipper(dir string) (*flipper, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	f := &flipper{dir: dir, current: verA, onDisk: versionA}
	if err := f.swapData(versionA); err != nil {
		return nil, err
	}
	if err := os.Symlink(filepath.Join("..data", "base.yaml"), filepath.Join(dir, "base.yaml")); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	if err := os.WriteFile(f.path(), []byte(versionA), 0o644); err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	return f, nil
}

func (f *flipper) path() string { return filepath.Join(f.dir, "tenants.yaml") }

// run flips every opts.FlipEvery until opts.Duration is over or ctx ends,
// and leaves a valid version on disk.
func (f *flipper) run(ctx context.Context, opts Options, rep *Report) error {
	tick := time.NewTicker(opts.FlipEvery)
	defer tick.Stop()
	end := time.NewTimer(opts.Duration)
	defer end.Stop()
	lastInvalid := false
loop:
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			break loop
		case <-end.C:
			break loop
		case <-tick.C:
		}
		mode := Mode(n % int(numModes))
		content, next := versionInvalid, f.current
		lastInvalid = n%opts.InvalidEvery == 0
		if lastInvalid {
			rep.InvalidFlips++
		} else {
			next = 1 - f.current
			content = next.content()
		}
		if err := f.write(mode, content); err != nil {
			return err
		}
		f.current = next
		rep.Flips++
		rep.FlipsByMode[mode]++
	}
	if lastInvalid {
		// End on a valid version, so the final check has one to expect.
		return f.write(Rename, f.current.content())
	}
	return nil
}

// write puts content into tenants.yaml the way mode says.
func (f *flipper) write(mode Mode, content string) error {
	switch mode {
	case InPlace:
		if f.isLink {
			// An in-place write through the symlink would edit the
			// ConfigMap's version dir; make it a regular file first.
			if err := f.renameOver(f.onDisk); err != nil {
				return err
			}
		}
		// Truncate, then write: a reload may read it half-written.
		if err := os.WriteFile(f.path(), []byte(content), 0o644); err != nil {
			return fmt.Errorf("soak: in-place write: %w", err)
		}
	case Rename:
		if err := f.renameOver(content); err != nil {
			return err
		}
	case ConfigMap:
		if !f.isLink {
			// First the same content through ..data, then point
			// tenants.yaml at it: no visible change.
			if err := f.swapData(f.onDisk); err != nil {
				return err
			}
			tmp := filepath.Join(f.dir, ".tenants.yaml.link")
			if err := os.Symlink(filepath.Join("..data", "tenants.yaml"), tmp); err != nil {
				return fmt.Errorf("soak: %w", err)
			}
			if err := os.Rename(tmp, f.path()); err != nil {
				return fmt.Errorf("soak: %w", err)
			}
			f.isLink = true
		}
		if err := f.swapData(content); err != nil {
			return err
		}
	}
	f.onDisk = content
	return nil
}

// renameOver writes content to a dotfile beside tenants.yaml (the loader
// ignores dotfiles) and renames it over tenants.yaml.
func (f *flipper) renameOver(content string) error {
	tmp := filepath.Join(f.dir, ".tenants.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	if err := os.Rename(tmp, f.path()); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	f.isLink = false
	return nil
}

// swapData does what the kubelet does: a new ..vNNNN dir with every file,
// a ..data_tmp symlink to it renamed over ..data, then the old dir removed.
func (f *flipper) swapData(tenants string) error {
	f.seq++
	name := fmt.Sprintf("..v%06d", f.seq)
	if err := writeVersionDir(filepath.Join(f.dir, name), tenants); err != nil {
		return err
	}
	tmp := filepath.Join(f.dir, "..data_tmp")
	if err := os.Symlink(name, tmp); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, "..data")); err != nil {
		return fmt.Errorf("soak: %w", err)
	}
	if f.verDir != "" {
		if err := os.RemoveAll(filepath.Join(f.dir, f.verDir)); err != nil {
			return fmt.Errorf("soak: %w", err)
		}
	}
	f.verDir = name
	return nil
}
