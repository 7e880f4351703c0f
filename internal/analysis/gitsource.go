package analysis

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/tenantgate/tenantgate/internal/policy"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

// GitSource is the data and policy directories as they were at a git
// revision, read with the git command (operators keep their data in git).
// It reads the same files a directory source would: *.yaml and *.yml
// directly in the data directory, *.rego but not *_test.rego in the
// policies directory. Each file is named REV:path, so an error in it says
// which version of which file.
type GitSource struct {
	Rev            string
	Data, Policies string // directories in the working tree
}

// Load implements engine.Source.
func (g GitSource) Load(ctx context.Context) (*tenant.Data, []policy.File, error) {
	var data []tenant.File
	err := g.each(ctx, g.Data, func(name string) bool {
		return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
	}, func(name string, b []byte) { data = append(data, tenant.File{Name: name, Content: b}) })
	if err != nil {
		return nil, nil, err
	}
	var mods []policy.File
	err = g.each(ctx, g.Policies, func(name string) bool {
		return strings.HasSuffix(name, ".rego") && !strings.HasSuffix(name, "_test.rego")
	}, func(name string, b []byte) { mods = append(mods, policy.File{Name: name, Content: b}) })
	if err != nil {
		return nil, nil, err
	}
	if len(mods) == 0 {
		return nil, nil, fmt.Errorf("%s:%s: no .rego files at that revision", g.Rev, g.Policies)
	}
	d, err := tenant.Load(data)
	if err != nil {
		return nil, nil, err
	}
	return d, mods, nil
}

// Watched implements engine.Source: a revision never changes.
func (g GitSource) Watched() []string { return nil }

// each reads the matching regular files directly in dir at the revision.
func (g GitSource) each(ctx context.Context, dir string, match func(string) bool, add func(string, []byte)) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// The directory's path in the repository: git resolves "./" against the
	// directory it is run in.
	out, err := git(ctx, abs, "ls-tree", "-z", "--full-name", g.Rev, "./")
	if err != nil {
		return fmt.Errorf("%s at %s: %w", dir, g.Rev, err)
	}
	found := false
	for _, rec := range bytes.Split(out, []byte{0}) {
		// <mode> SP <type> SP <object> TAB <path>
		meta, p, ok := bytes.Cut(rec, []byte{'\t'})
		if !ok {
			continue
		}
		f := strings.Fields(string(meta))
		if len(f) != 3 || f[1] != "blob" || f[0] == "120000" {
			continue
		}
		found = true
		name := path.Base(string(p))
		if !match(name) || strings.HasPrefix(name, ".") {
			continue
		}
		b, err := git(ctx, abs, "cat-file", "blob", f[2])
		if err != nil {
			return fmt.Errorf("%s:%s: %w", g.Rev, string(p), err)
		}
		add(g.Rev+":"+string(p), b)
	}
	if !found {
		return fmt.Errorf("%s: no files at revision %s", dir, g.Rev)
	}
	return nil
}

func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return nil, fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		}
		return nil, fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, msg)
	}
	return out, nil
}
