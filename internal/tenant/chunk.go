package tenant

import (
	"bytes"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	yaml "go.yaml.in/yaml/v3"
)

// Parsing one large file in parallel.
//
// yaml.v3 parses some 15-20 MB/s on one core and is most of a load's cost,
// so a single big users.yaml would leave the other cores idle. A big
// top-level customers: or users: section is therefore cut at entry
// boundaries into chunks that are parsed in parallel, each chunk after the
// first read behind a synthetic "users:" (or "customers:") header line.
//
// A cut is only made before a line that starts an entry: exactly the
// section's entry indentation, then a character that can start a plain or
// quoted key. At such a line, the parser of the whole file is back at the
// start of an entry of the section, unless a quoted scalar or a flow
// collection is still open, in which case the chunk before the cut fails to
// parse. (Block and plain multi-line scalars end at a line indented that
// little.) The chunks are used only if every one of them parsed and walked
// without any error and their top-level keys show the cut sections are
// where the plan put them (verifyChunks); otherwise the file is parsed again
// in one piece. So errors, and their lines, are always the plain parse's.
// Files with line breaks other than \n and \r\n are never cut, since the
// planner counts lines by \n alone. TestChunkedParseMatchesPlain and
// FuzzChunkedParseMatchesPlain check that the two parses agree.

// minChunkBytes is the smallest chunk worth a goroutine of its own.
const minChunkBytes = 1 << 20

type chunkPlan struct {
	section    string // "customers" or "users"
	headerLine int    // the section key's line
	firstLine  int    // the section's first entry's line
	indent     int    // the section's entry indentation, in spaces
	cuts       []cut  // where chunks 1..n start
}

type cut struct {
	off  int // byte offset of the entry line
	line int // its line number
}

// parseAll parses and walks every file, with up to workers goroutines. A
// file's results are in file order, a chunked file's chunks in text order.
func parseAll(files []File, workers, minChunk int) []*parsedFile {
	type task struct {
		size int
		run  func()
	}
	results := make([][]*parsedFile, len(files))
	plans := make([]*chunkPlan, len(files))
	var tasks []task
	for i, f := range files {
		if workers > 1 {
			if plan := planChunks(f.Content, workers, minChunk); plan != nil {
				plans[i] = plan
				results[i] = make([]*parsedFile, len(plan.cuts)+1)
				for j, c := range chunkParsers(f, plan) {
					tasks = append(tasks, task{c.size, func() { results[i][j] = c.parse() }})
				}
				continue
			}
		}
		results[i] = make([]*parsedFile, 1)
		tasks = append(tasks, task{len(f.Content), func() { results[i][0] = parseFile(f.Name, f.Content) }})
	}

	// Biggest first, so a small file does not end up last on its own.
	slices.SortStableFunc(tasks, func(a, b task) int { return b.size - a.size })
	if workers = min(workers, len(tasks)); workers <= 1 {
		for _, t := range tasks {
			t.run()
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := int(next.Add(1) - 1); i < len(tasks); i = int(next.Add(1) - 1) {
					tasks[i].run()
				}
			})
		}
		wg.Wait()
	}

	var out []*parsedFile
	for i, f := range files {
		if plans[i] != nil && !verifyChunks(plans[i], results[i]) {
			results[i] = []*parsedFile{parseFile(f.Name, f.Content)}
		}
		out = append(out, results[i]...)
	}
	return out
}

type chunkParser struct {
	size  int
	parse func() *parsedFile
}

// chunkParsers returns a parser for each chunk of f that plan describes.
func chunkParsers(f File, plan *chunkPlan) []chunkParser {
	header := []byte(plan.section + ":\n")
	out := make([]chunkParser, len(plan.cuts)+1)
	for j := range out {
		start, end := 0, len(f.Content)
		if j > 0 {
			start = plan.cuts[j-1].off
		}
		if j < len(plan.cuts) {
			end = plan.cuts[j].off
		}
		if j == 0 {
			out[j] = chunkParser{end, func() *parsedFile {
				return parse(f.Name, bytes.NewReader(f.Content[:end]), f.Content[:end], 0)
			}}
			continue
		}
		// The header is chunk line 1, so chunk line 2 is the cut's line.
		offset := plan.cuts[j-1].line - 2
		out[j] = chunkParser{end - start, func() *parsedFile {
			r := io.MultiReader(bytes.NewReader(header), bytes.NewReader(f.Content[start:end]))
			return parse(f.Name, r, nil, offset)
		}}
	}
	return out
}

// planChunks finds the largest top-level customers: or users: section in
// block style and plans up to parts chunks of at least minChunk bytes. It
// returns nil when the file is not worth cutting or has no section it can
// cut.
func planChunks(content []byte, parts, minChunk int) *chunkPlan {
	if parts < 2 || len(content) < 2*minChunk || hasOtherLineBreaks(content) {
		return nil
	}
	type region struct {
		section             string
		headerLine, indent  int
		first, end          int // byte offsets: the first entry line, the section's end
		firstLine           int
		indentKnown, usable bool
	}
	var best, cur region
	closeRegion := func(end int) {
		if cur.usable && cur.indentKnown {
			cur.end = end
			if cur.end-cur.first > best.end-best.first {
				best = cur
			}
		}
		cur = region{}
	}
	line := 0
	for off := 0; off < len(content); {
		line++
		next := len(content)
		if i := bytes.IndexByte(content[off:], '\n'); i >= 0 {
			next = off + i + 1
		}
		l := bytes.TrimSuffix(bytes.TrimSuffix(content[off:next], []byte{'\n'}), []byte{'\r'})
		switch {
		case len(l) > 0 && l[0] != ' ' && l[0] != '\t' && l[0] != '#':
			// Column 0 content ends a section, and may start one.
			closeRegion(off)
			if name, ok := sectionHeader(l); ok {
				cur = region{section: name, headerLine: line, usable: true}
			}
		case cur.usable && !cur.indentKnown:
			n := countSpaces(l)
			if n == len(l) || l[n] == '#' {
				break // blank or comment line
			}
			if n == 0 || !isEntryStart(l, n) {
				cur.usable = false // a tab, a list, a complex key: leave it whole
				break
			}
			cur.indent, cur.indentKnown, cur.first, cur.firstLine = n, true, off, line
		}
		off = next
	}
	closeRegion(len(content))
	size := best.end - best.first
	if parts = min(parts, size/max(minChunk, 1)); parts < 2 {
		return nil
	}

	plan := &chunkPlan{section: best.section, headerLine: best.headerLine, firstLine: best.firstLine, indent: best.indent}
	line = best.firstLine
	target := best.first + size/parts
	for off := best.first; off < best.end && len(plan.cuts) < parts-1; {
		next := best.end
		if i := bytes.IndexByte(content[off:best.end], '\n'); i >= 0 {
			next = off + i + 1
		}
		if off >= target && off > best.first && countSpaces(content[off:next]) == best.indent && isEntryStart(content[off:next], best.indent) {
			plan.cuts = append(plan.cuts, cut{off, line})
			target = best.first + size*(len(plan.cuts)+1)/parts
		}
		line++
		off = next
	}
	if len(plan.cuts) == 0 {
		return nil
	}
	return plan
}

// hasOtherLineBreaks reports whether content has a line break other than
// \n and \r\n: a lone \r, or NEL, LS or PS, which YAML also counts as line
// breaks. The planner only splits lines at \n, so it leaves such files whole.
func hasOtherLineBreaks(content []byte) bool {
	for i := bytes.IndexByte(content, '\r'); i >= 0; {
		if i+1 >= len(content) || content[i+1] != '\n' {
			return true
		}
		j := bytes.IndexByte(content[i+1:], '\r')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return bytes.Contains(content, []byte("\u0085")) || bytes.Contains(content, []byte("\u2028")) || bytes.Contains(content, []byte("\u2029"))
}

// sectionHeader reports whether a column-0 line is exactly "customers:" or
// "users:", optionally followed by blanks and a comment. Anything else after
// the colon (a flow mapping, an anchor, a tag) is not cut.
func sectionHeader(l []byte) (string, bool) {
	for _, name := range [...]string{"customers", "users"} {
		rest, ok := bytes.CutPrefix(l, []byte(name+":"))
		if !ok {
			continue
		}
		trimmed := bytes.TrimLeft(rest, " \t")
		if len(trimmed) == 0 || (len(trimmed) < len(rest) && trimmed[0] == '#') {
			return name, true
		}
	}
	return "", false
}

func countSpaces(l []byte) int {
	n := 0
	for n < len(l) && l[n] == ' ' {
		n++
	}
	return n
}

// isEntryStart reports whether l[n] can start an entry's key: not a blank,
// a comment, a list or complex-key indicator, a flow collection, an anchor,
// alias or tag, or a reserved character.
func isEntryStart(l []byte, n int) bool {
	if n >= len(l) {
		return false
	}
	switch l[n] {
	case ' ', '\t', '\r', '\n', '#', '-', '?', ':', ',', '[', ']', '{', '}', '&', '*', '!', '|', '>', '%', '@', '`':
		return false
	}
	return true
}

// verifyChunks reports whether the chunks parsed cleanly and the cut
// sections are where the plan put them: the first chunk's last top-level
// key is the section's header, each later chunk starts with the synthetic
// header followed by entries at the section's indentation, only the last
// chunk has other keys after it, and no key is repeated across chunks.
func verifyChunks(plan *chunkPlan, chunks []*parsedFile) bool {
	for _, pf := range chunks {
		if len(pf.errs) > 0 {
			return false
		}
	}
	col := plan.indent + 1
	first := chunks[0].top
	if len(first) == 0 {
		return false
	}
	if first[len(first)-1] != (topKey{plan.section, plan.headerLine, 1, yaml.MappingNode, plan.firstLine, col}) {
		return false
	}
	seen := make(map[string]bool)
	for _, k := range first {
		seen[k.name] = true
	}
	for j, pf := range chunks[1:] {
		if len(pf.top) == 0 || pf.top[0] != (topKey{plan.section, 1, 1, yaml.MappingNode, 2, col}) {
			return false
		}
		last := j == len(chunks)-2
		if !last && len(pf.top) != 1 {
			return false
		}
		for _, k := range pf.top[1:] {
			if seen[k.name] {
				return false
			}
			seen[k.name] = true
		}
	}
	return true
}
