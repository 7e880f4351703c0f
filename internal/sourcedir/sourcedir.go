// Package sourcedir reads the files a loader takes from a directory: the
// tenant data (*.yaml, *.yml) and the policies (*.rego, not *_test.rego).
// The tenant and policy loaders, the settle check and the bundle reader all
// need the same idea of which names count, so it is written once here.
package sourcedir

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File is one file read from a source directory: its path (which error
// messages name) and its content.
type File struct {
	Name    string
	Content []byte
}

// IsData reports whether a file name is tenant data: *.yaml or *.yml, not
// hidden (an editor's or a ConfigMap's dot files are not data).
func IsData(name string) bool {
	return !strings.HasPrefix(name, ".") && (strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml"))
}

// IsPolicy reports whether a file name is a policy to serve: *.rego, not a
// *_test.rego (tests are for `opa test`), not hidden.
func IsPolicy(name string) bool {
	return !strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".rego") && !strings.HasSuffix(name, "_test.rego")
}

// IsLoaded reports whether a name can change what a reload reads: data, a
// policy or a policy test (a test file is not served, but it is harmless to
// wait for), and a ConfigMap's ..data link.
func IsLoaded(name string) bool {
	return name == "..data" || IsData(name) || (!strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".rego"))
}

// Kind is a kind of source file: what error messages call it, the names
// that count, and the pattern an error shows for them.
type Kind struct {
	What    string
	Pattern string
	Keep    func(name string) bool
}

// The two kinds the loaders read.
var (
	Data     = Kind{What: "data", Pattern: "*.yaml or *.yml", Keep: IsData}
	Policies = Kind{What: "policy", Pattern: ".rego", Keep: IsPolicy}
)

// Read returns the regular files directly in dir of the given kind, in name
// order. Symlinks are followed, as a Kubernetes ConfigMap mount needs;
// subdirectories and other files are left out. A directory with no such
// file is an error: serving nothing is never what an operator meant.
func Read(dir string, k Kind) ([]File, error) { return ReadFunc(dir, k, nil) }

// ReadFunc is Read, handing each file to f (when not nil) as soon as it is
// read and keeping what f returns in its place: a caller that needs only
// some files' bytes can drop the others' at once, rather than hold the
// whole directory's (tenant.Cache drops those it has parsed before).
func ReadFunc(dir string, k Kind, f func(File) File) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s directory: %w", k.What, err)
	}
	var files []File
	for _, e := range entries { // os.ReadDir sorts by name
		if !k.Keep(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		st, err := os.Stat(path) // unlike the DirEntry, follows a symlink
		if err != nil {
			return nil, fmt.Errorf("%s file: %w", k.What, err)
		}
		if !st.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s file: %w", k.What, err)
		}
		file := File{Name: path, Content: b}
		if f != nil {
			file = f(file)
		}
		files = append(files, file)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s directory %s: no %s files", k.What, dir, k.Pattern)
	}
	return files, nil
}
