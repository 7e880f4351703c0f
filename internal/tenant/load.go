package tenant

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/tenantgate/tenantgate/internal/sourcedir"
)

// LoadDir reads every *.yaml / *.yml file directly in dir, sorted by name,
// and calls Load. Symlinks are followed, so a Kubernetes ConfigMap mount
// (users.yaml -> ..data/users.yaml, ..data -> ..2024_01_01) works; dotfiles
// (which covers ..data and the timestamped ..2024_xx dirs), subdirectories,
// other files and anything that is not a regular file (a FIFO named x.yaml
// would block the read) are ignored. Extensions are matched case-sensitively.
//
// An unreadable dir or file (including a dangling symlink) is an error naming
// the path. A dir without any data file is an error too: it is almost always
// a wrong --data path or ConfigMap keys without an extension, and loading
// nothing would silently deny everyone.
func LoadDir(dir string) (*Data, error) { return (*Cache)(nil).LoadDir(dir) }

// LoadDir is the package's LoadDir, reusing what c remembers.
func (c *Cache) LoadDir(dir string) (*Data, error) {
	// The bytes of a file parsed before are dropped as soon as they are
	// hashed: held until the end of the reading, an unchanged tree's bytes
	// (97 MB at a million users) would all be in memory at the peak of
	// every reload.
	var sums [][sha256.Size]byte
	files, err := sourcedir.ReadFunc(dir, sourcedir.Data, func(f File) File {
		sum := sha256.Sum256(f.Content)
		if c.has(f.Name, sum) {
			f.Content = nil
		}
		sums = append(sums, sum)
		return f
	})
	if err != nil {
		return nil, fmt.Errorf("tenant: %w", err)
	}
	// sourcedir's names are sorted and distinct: what Load checks first.
	return c.load(files, sums, nil)
}

// has reports whether c remembers the parse of a file of this name and
// content sum.
func (c *Cache) has(name string, sum [sha256.Size]byte) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	prev, ok := c.parsed[name]
	return ok && prev.sum == sum
}

// Cache remembers the files parsed by the last load, by name and content,
// so that the next load parses only the files that changed: at 200,000
// users in four files, an edit to one is a quarter of the parsing. A parsed
// file is never written once parsed (see build), so sharing it between
// loads, and with the Data still serving, is safe. Every load still reads
// every file and runs every check across files. The zero Cache and a nil
// *Cache are ready to use; a nil one remembers nothing.
type Cache struct {
	mu     sync.Mutex
	parsed map[string]cachedFile // by file name
	// The last Data built without errors and the parsed files it was
	// built from, in name order: the next build copies its users index and
	// redoes only the changed files' part. Held only while it is also the
	// Data serving, bar the moment a newer one replaces it.
	last      *Data
	lastFiles []*parsedFile
}

type cachedFile struct {
	sum [sha256.Size]byte // of the content
	pf  *parsedFile
}

// NewCache returns an empty cache.
func NewCache() *Cache { return &Cache{} }

// Load parses, merges, validates and indexes the given documents. On any
// problem it returns a nil *Data and an Errors value holding every error
// found (not just the first; past maxErrors, one error counts the rest),
// sorted by file then line.
//
// Files are processed in name order whatever order they are given in, so the
// result, the digest and the errors do not depend on the caller's order.
// Files up to 4 MiB are parsed in parallel, larger ones one after the
// other (parseAll): the fast path (fastparse.go) leaves little garbage, but
// a file it gives up on goes through a yaml.v3 node tree many times its
// size, and a reload builds beside the snapshot still serving. (With every
// file through yaml.v3, parsing in parallel was measured at 200,000 users
// as 1.30 s one by one, 1.41 s in parallel on 2 cores, and a reload's peak
// RSS 329 MB against 416 MB.)
func Load(files []File) (*Data, error) { return (*Cache)(nil).Load(files) }

// Load is the package's Load, reusing the parse of every file whose name
// and content are those of a file in the last load through c. Afterwards c
// remembers this load's files (whether or not it succeeded).
func (c *Cache) Load(files []File) (*Data, error) {
	files = slices.Clone(files)
	slices.SortStableFunc(files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })

	var errs Errors
	names := make([]string, 0, len(files))
	uniq := files[:0]
	for _, f := range files {
		if len(names) > 0 && names[len(names)-1] == f.Name {
			errs = append(errs, &FieldError{File: f.Name, Msg: "file given twice"})
			continue
		}
		names = append(names, f.Name)
		uniq = append(uniq, f)
	}
	files = uniq
	return c.load(files, fileSums(files), errs)
}

// load is Load once the files are sorted by name and distinct, each with
// the sha256 of its content in sums. A file whose Content is nil is one c
// had parsed with that sum (LoadDir drops those bytes early); if c no
// longer has it (a concurrent load replaced it), it is an error rather than
// an empty file.
func (c *Cache) load(files []File, sums [][sha256.Size]byte, errs Errors) (*Data, error) {
	if c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
	}
	// The digest first, so that each file's bytes can be dropped as soon as
	// it is parsed: a reload holds them beside the snapshot still serving.
	// Each file is hashed once: its sum makes the digest and keys the cache.
	sum := digestOf(files, sums)
	parsed := make([]*parsedFile, len(files))
	var remember map[string]cachedFile
	if c != nil {
		remember = make(map[string]cachedFile, len(files))
	}
	var todo []int // the files to parse
	for i, f := range files {
		if c != nil {
			if prev, ok := c.parsed[f.Name]; ok && prev.sum == sums[i] {
				parsed[i] = prev.pf
			} else if f.Content == nil && sums[i] != emptySum {
				parsed[i] = &parsedFile{name: f.Name, errs: Errors{{File: f.Name, Msg: "changed while being read: the next reload reads it again"}}}
			}
		}
		if parsed[i] == nil {
			todo = append(todo, i)
		} else {
			files[i].Content = nil // files is this function's own copy
		}
	}
	parseAll(files, todo, parsed)
	if c != nil {
		for i, f := range files {
			remember[f.Name] = cachedFile{sums[i], parsed[i]}
		}
	}
	if c != nil {
		c.parsed = remember
	}
	var prev *Data
	var prevFiles []*parsedFile
	if c != nil {
		prev, prevFiles = c.last, c.lastFiles
	}
	d, errs := build(parsed, errs, prev, prevFiles)
	if c != nil && len(errs) == 0 {
		c.last, c.lastFiles = d, parsed
	}
	if len(errs) > 0 {
		// Copies: a cached file's errors are handed to every load of it,
		// and a caller may rewrite what it is given (bundle errors drop
		// their lines).
		for i, e := range errs {
			own := *e
			errs[i] = &own
		}
		slices.SortStableFunc(errs, func(a, b *FieldError) int {
			if c := strings.Compare(a.File, b.File); c != 0 {
				return c
			}
			return a.Line - b.Line
		})
		// Each file keeps at most maxErrors, but the checks across files add
		// theirs, and there can be many files.
		return nil, capErrors(errs)
	}
	d.Files = make([]string, len(files))
	for i, f := range files {
		d.Files[i] = f.Name
	}
	d.Digest = sum
	return d, nil
}

var emptySum = sha256.Sum256(nil)

// parallelParseMax is the largest file parsed beside others. The fast path
// leaves little garbage, but a file it gives up on is parsed by yaml.v3
// into a node tree many times its size: big files go one at a time.
const parallelParseMax = 4 << 20

// parseAll parses files[i] into parsed[i] for each i in todo, dropping each
// file's bytes once parsed. Files up to parallelParseMax are parsed by as
// many goroutines as there are CPUs (a tree split into 500 files starts
// nearly twice as fast on two), the others one after the other.
func parseAll(files []File, todo []int, parsed []*parsedFile) {
	parse := func(i int) {
		parsed[i] = parseFile(files[i].Name, files[i].Content)
		files[i].Content = nil
	}
	var small []int
	for _, i := range todo {
		if len(files[i].Content) > parallelParseMax {
			parse(i)
		} else {
			small = append(small, i)
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(small), 8)
	if workers <= 1 {
		for _, i := range small {
			parse(i)
		}
		return
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				parse(i)
			}
		})
	}
	for _, i := range small {
		next <- i
	}
	close(next)
	wg.Wait()
}

func fileSums(files []File) [][sha256.Size]byte {
	sums := make([][sha256.Size]byte, len(files))
	for i, f := range files {
		sums[i] = sha256.Sum256(f.Content)
	}
	return sums
}

// digestOf is the hex sha256 over each file's length-prefixed name and the
// sha256 of its content (sums), so that moving bytes between a name and a
// content, or between two files, changes the digest.
func digestOf(files []File, sums [][sha256.Size]byte) string {
	h := sha256.New()
	var n [8]byte
	for i, f := range files {
		binary.BigEndian.PutUint64(n[:], uint64(len(f.Name)))
		h.Write(n[:])
		h.Write([]byte(f.Name))
		h.Write(sums[i][:])
	}
	return hex.EncodeToString(h.Sum(nil))
}
