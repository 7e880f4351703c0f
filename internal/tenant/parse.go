package tenant

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	// go.yaml.in/yaml/v3 is gopkg.in/yaml.v3 under its new home (the YAML
	// org maintains it there, same API); it is the one already in go.mod.
	yaml "go.yaml.in/yaml/v3"
)

// parsedFile is one file's contribution: its customers and users as
// declared, the line numbers the cross-file checks need, and the errors found
// inside the file alone. Once parse returns it is never written again: a
// Cache keeps it for the next load of the same bytes, and a loaded Data
// points into its users (its customers are copied per load, since the
// lineage derived from them depends on every file).
type parsedFile struct {
	name       string
	lineOffset int        // added to a node's line: where a chunk starts in its file
	customers  []Customer // one allocation per file
	cmeta      []customerMeta
	users      []User // one allocation per file; the Data map points into it
	umeta      []userMeta
	bigMeta    map[int]userLines // the users whose lines do not fit a userMeta, by index
	pk         *packer           // while a large file is read: what is packed so far
	locLines   []int             // the lines of the users' locations, umeta[i].locFirst onwards
	errs       Errors
	dropped    int // errors past maxErrors, counted but not kept
}

// customerMeta and userMeta hold the lines of the fields that are checked
// against other entries once every file is merged. They hold no pointers:
// a Cache keeps them, and the collector need not scan them.
type customerMeta struct {
	parentLine int
}

// userLines is what the walk of a user records: the lines of its fields
// that are checked against other entries (0: no such field).
type userLines struct {
	customerLine, roleLine int32
	// The lines of the user's Locations entries, in Locations' (sorted)
	// order: parsedFile.locLines[locFirst : locFirst+locN].
	locFirst, locN int32
}

// userMeta is userLines as a parsed file keeps it, in 8 bytes rather than
// 16 (8 MB at a million users): the two lines as distances from the user's
// own line plus one, which in a plain file are a few lines. A user whose
// distances or location count do not fit (an alias can put a field before
// its user) has customer == metaBig and its userLines in bigMeta.
type userMeta struct {
	locFirst       int32
	locN           uint16
	customer, role uint8
}

const metaBig = 0xff

// addUser appends u and the lines its walk recorded.
func (pf *parsedFile) addUser(u User, l userLines) {
	i := len(pf.users)
	pf.users = append(pf.users, u)
	m := userMeta{locFirst: l.locFirst}
	dist := func(line int32) (uint8, bool) {
		if line == 0 {
			return 0, true
		}
		d := line - u.Line + 1
		return uint8(d), d >= 1 && d < metaBig
	}
	var okC, okR bool
	m.customer, okC = dist(l.customerLine)
	m.role, okR = dist(l.roleLine)
	m.locN = uint16(l.locN)
	if !okC || !okR || l.locN < 0 || l.locN >= 0xffff {
		if pf.bigMeta == nil {
			pf.bigMeta = make(map[int]userLines)
		}
		pf.bigMeta[i] = l
		m = userMeta{customer: metaBig}
	}
	pf.umeta = append(pf.umeta, m)
}

// lines returns what addUser recorded for user i.
func (pf *parsedFile) lines(i int) userLines {
	m := pf.umeta[i]
	if m.customer == metaBig {
		return pf.bigMeta[i]
	}
	line := func(d uint8) int32 {
		if d == 0 {
			return 0
		}
		return pf.users[i].Line + int32(d) - 1
	}
	return userLines{customerLine: line(m.customer), roleLine: line(m.role), locFirst: m.locFirst, locN: int32(m.locN)}
}

// setLocN records that user i keeps the first n of its location lines.
func (pf *parsedFile) setLocN(i int, n int32) {
	if pf.umeta[i].customer == metaBig {
		l := pf.bigMeta[i]
		l.locN = n
		pf.bigMeta[i] = l
		return
	}
	pf.umeta[i].locN = uint16(n) // n <= the count it replaces, which fit
}

const (
	tagStr       = "!!str"
	tagInt       = "!!int"
	tagFloat     = "!!float"
	tagTimestamp = "!!timestamp"
	tagBool      = "!!bool"
	tagNull      = "!!null"
)

// line is a node's line in the file (a chunk starts later in its file).
func (pf *parsedFile) line(n *yaml.Node) int {
	return n.Line + pf.lineOffset
}

// add records an error, up to maxErrors of them: past that an error costs
// memory (several hundred bytes each, kept, then printed) and tells the
// operator nothing the first ones did not, and one value that aliases name
// many times, or a long run of bad entries, could otherwise make millions.
func (pf *parsedFile) add(line int, kind, id, field, msg string) {
	if len(pf.errs) >= maxErrors {
		pf.dropped++
		return
	}
	pf.errs = append(pf.errs, &FieldError{File: pf.name, Line: line, Kind: kind, ID: id, Field: field, Msg: msg})
}

// noteDropped adds the error that says how many were left out.
func (pf *parsedFile) noteDropped() {
	if pf.dropped > 0 {
		pf.errs = append(pf.errs, moreErrors(pf.name, pf.dropped))
	}
}

// parseFile reads one file: by the fast path (fastparse.go) when it has
// the plain shape, else by decoding it with yaml.v3 and walking the node
// tree. Both give the same result.
func parseFile(name string, content []byte) *parsedFile {
	if pf, ok := parseFast(name, content); ok {
		return pf
	}
	return parseYAML(name, content)
}

// parseYAML decodes one file with yaml.v3 and walks its node tree.
func parseYAML(name string, content []byte) *parsedFile {
	return parse(name, bytes.NewReader(content), content, 0)
}

// parse decodes the YAML text read from r and walks its node tree. content,
// when not nil, is the same text, used to place errors the parser gives no
// line for. parse never panics on bad input: the YAML parser turns its own
// failures into errors, and a panic from a parser bug is caught here,
// because a reload must not kill the authorizer.
func parse(name string, r io.Reader, content []byte, lineOffset int) (pf *parsedFile) {
	pf = &parsedFile{name: name, lineOffset: lineOffset}
	defer func() {
		if r := recover(); r != nil {
			pf.add(0, "", "", "", fmt.Sprintf("internal error parsing YAML: %v", r))
		}
	}()

	defer pf.pack()
	defer pf.noteDropped()
	dec := yaml.NewDecoder(r)
	if !pf.decodeAndWalk(dec, content) {
		return pf
	}
	// The contract's data is one mapping per file; a second document would be
	// silently ignored by a plain decode, so it is refused explicitly.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		pf.syntaxError(err, content)
	default:
		pf.add(pf.line(&extra), "", "", "", "a second YAML document (after ---) is not supported: keep one document per file, or move it to another file")
	}
	return pf
}

// decodeAndWalk decodes the first document and walks it; the node tree is
// garbage when it returns. It reports whether the decoder can go on.
func (pf *parsedFile) decodeAndWalk(dec *yaml.Decoder, content []byte) bool {
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) {
		return false // empty, or only comments: nothing declared
	}
	if err != nil {
		pf.syntaxError(err, content)
		return false
	}
	if len(doc.Content) == 1 {
		// The node tree holds each alias once, but the walk (and anything
		// reading the data after it) meets an alias's node every time it is
		// named: a few KB of aliases can stand for GBs. So the expansion is
		// measured first, on the tree, and a file over its limit is not
		// walked at all.
		if !pf.withinExpansionLimit(doc.Content[0], len(content)) {
			return false
		}
		pf.walkTop(resolve(doc.Content[0]))
	}
	return true
}

// Loading is bounded (tenantgate help data): with every alias replaced by the node
// it names, a file of S bytes may hold at most expansionFactor*S +
// expansionSlack, where each value (a scalar, a list or a mapping) counts 1
// plus the length of its text. Without aliases a file is always within it
// (a value takes at least about one byte of the file, and its text is not
// longer than the bytes that wrote it, bar a few escapes), so the limit only
// bounds what aliases add; the slack lets a small file use a shared list or
// template freely. `tenantgate help reload` states the limit and what it costs.
const (
	expansionFactor = 8
	expansionSlack  = 64 << 10
)

// expansionLimit is the most a file of size bytes may expand to.
func expansionLimit(size int) int64 {
	return expansionFactor*int64(size) + expansionSlack
}

// withinExpansionLimit measures the document rooted at root as the walk
// would see it and reports whether it is within the limit for a file of size
// bytes; if not, it records the error.
func (pf *parsedFile) withinExpansionLimit(root *yaml.Node, size int) bool {
	e := expansion{limit: expansionLimit(size), sizes: make(map[*yaml.Node]int64)}
	total := e.size(root)
	switch {
	case e.cycle != nil:
		pf.add(pf.line(e.cycle), "", "", "", fmt.Sprintf("the alias *%s names a node that contains it, an endless expansion: remove it", quoteAnchor(e.cycle.Value)))
		return false
	case total > e.limit:
		line := 0
		where := ""
		if e.at != nil {
			line = pf.line(e.at)
			where = fmt.Sprintf(" (passed at the alias *%s)", quoteAnchor(e.at.Value))
		}
		pf.add(line, "", "", "", fmt.Sprintf("with its aliases expanded the file is over its limit of %d (%d times its %d bytes, plus %d; each value counts 1 plus its length)%s: "+
			"write out what the aliases repeat, or use fewer of them; nothing in the file was read", e.limit, expansionFactor, size, expansionSlack, where))
		return false
	}
	return true
}

// quoteAnchor cuts an anchor name to a readable length for a message.
func quoteAnchor(name string) string {
	const max = 64
	if len(name) > max {
		return name[:max] + "..."
	}
	return name
}

// expansion measures a node tree with every alias replaced by the node it
// names. Each anchored node is measured once and remembered, so the count
// costs one visit per node of the tree, however often its nodes are named;
// and it stops as soon as a count passes the limit, so no sum exceeds twice
// the limit.
type expansion struct {
	limit int64
	sizes map[*yaml.Node]int64 // anchored nodes measured so far; measuring while being measured
	at    *yaml.Node           // the innermost alias whose expansion passed the limit
	cycle *yaml.Node           // an alias inside the node it names
}

const measuring = -1

func (e *expansion) size(n *yaml.Node) int64 {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return 1 // yaml.v3 refuses an unknown anchor; counted in case
		}
		s, ok := e.sizes[n.Alias]
		switch {
		case !ok:
			// An alias names a node that came before it in the file, which
			// the count has met; measured here all the same if not.
			s = e.size(n.Alias)
		case s == measuring:
			e.cycle = n
			return e.limit + 1
		}
		if s > e.limit && e.at == nil {
			e.at = n
		}
		return s
	}
	if n.Anchor != "" {
		e.sizes[n] = measuring
	}
	total := 1 + int64(len(n.Value))
	for _, c := range n.Content {
		total += e.size(c)
		if total > e.limit {
			if e.at == nil && c.Kind == yaml.AliasNode {
				e.at = c
			}
			break
		}
	}
	if n.Anchor != "" {
		e.sizes[n] = total
	}
	return total
}

// syntaxError records a parser error with the line yaml.v3 reports. Its line
// is where the parser was (often the start of the enclosing mapping or list,
// so it can be a few lines before the mistake). yaml.v3 prints no line when
// its mark is on the first line, and none for reader errors and unknown
// anchors; those lines are found here.
func (pf *parsedFile) syntaxError(err error, content []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, after, ok := strings.Cut(rest, ": "); ok {
			if n, convErr := strconv.Atoi(num); convErr == nil {
				line, msg = n, after
			}
		}
	}
	if line == 0 {
		line = guessSyntaxLine(msg, content)
	}
	if line > 0 {
		line += pf.lineOffset
	}
	pf.add(line, "", "", "", "invalid YAML: "+msg)
}

func guessSyntaxLine(msg string, content []byte) int {
	if anchor, ok := strings.CutPrefix(msg, "unknown anchor '"); ok {
		anchor, _, _ = strings.Cut(anchor, "'")
		if i := bytes.Index(content, []byte("*"+anchor)); i >= 0 {
			return 1 + bytes.Count(content[:i], []byte{'\n'})
		}
		return 0
	}
	// Reader errors (control characters, invalid UTF-8) carry no mark: find
	// the first offending byte.
	for i := 0; i < len(content); {
		c := content[i]
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' || c == 0x7f {
			return 1 + bytes.Count(content[:i], []byte{'\n'})
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(content[i:])
		if r == utf8.RuneError && size == 1 {
			return 1 + bytes.Count(content[:i], []byte{'\n'})
		}
		i += size
	}
	return 1
}

// resolve follows aliases (*name) to the anchored node.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// text returns the text of a scalar usable as a string. Numbers and dates
// are taken as written (1234 or 2024-01-01 are fine ids); null and booleans
// are not, since `parent: ~` or `name: true` is almost surely a mistake.
func text(n *yaml.Node) (string, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		return "", false
	}
	switch n.ShortTag() {
	case tagStr, tagInt, tagFloat, tagTimestamp:
		return n.Value, true
	}
	return "", false
}

// describe names a node's YAML type for a "must be X, got Y" message.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case tagNull:
			return "an empty value"
		case tagBool:
			return "the boolean " + n.Value
		case tagStr, tagInt, tagFloat, tagTimestamp:
			return quoteShort(n.Value)
		}
		return "a " + n.ShortTag() + " value"
	}
	return "an unsupported YAML node"
}

// quoteShort quotes s for a message, cut to a readable length.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull
}

// walkTop walks the document's root: a mapping with customers and/or users.
func (pf *parsedFile) walkTop(root *yaml.Node) {
	if isNull(root) {
		return // a document that is just "---" or "~"
	}
	if root.Kind != yaml.MappingNode {
		pf.add(pf.line(root), "", "", "", "the top level must be a mapping with the keys customers and/or users, got "+describe(root))
		return
	}
	var st topState
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], resolve(root.Content[i+1])
		switch pf.topEntry(&st, k, v) {
		case "customers":
			pf.walkCustomers(v)
		case "users":
			pf.walkUsers(v)
		}
	}
}

// topState is what the top-level keys met so far have set.
type topState struct {
	customersLine, usersLine int
}

// topEntry checks one top-level key and its (resolved) value, and returns
// the section to walk: "customers", "users", or "" when there is nothing
// to walk (an error, or an empty value).
func (pf *parsedFile) topEntry(st *topState, k, v *yaml.Node) string {
	key, ok := text(k)
	if !ok {
		pf.add(pf.line(k), "", "", "", "a top-level key must be customers or users, got "+describe(k))
		return ""
	}
	var first *int
	switch key {
	case "customers":
		first = &st.customersLine
	case "users":
		first = &st.usersLine
	default:
		pf.add(pf.line(k), "", "", key, "unknown top-level key (want customers or users)")
		return ""
	}
	if *first != 0 {
		pf.add(pf.line(k), "", "", key, fmt.Sprintf("duplicate key (first at line %d)", *first))
		return ""
	}
	*first = pf.line(k)
	switch {
	case isNull(v):
		// "customers:" with nothing under it declares nothing.
	case v.Kind != yaml.MappingNode:
		pf.add(pf.line(v), "", "", key, "must be a mapping of id to entry, got "+describe(v))
	default:
		return key
	}
	return ""
}

// Field indexes, for duplicate detection within one entry.
const (
	fName = iota
	fType
	fParent
	fCustomer
	fRole
	fLocations
	fComputers
	fDisabled
	nFields
)

// fieldIndex maps a field name to its index for one kind of entry.
func fieldIndex(kind, name string) int {
	switch name {
	case "locations":
		return fLocations
	case "disabled":
		return fDisabled
	}
	if kind == "customer" {
		switch name {
		case "name":
			return fName
		case "type":
			return fType
		case "parent":
			return fParent
		}
		return -1
	}
	switch name {
	case "customer":
		return fCustomer
	case "role":
		return fRole
	case "computers":
		return fComputers
	}
	return -1
}

// entryKey reads an entry's key (its id). ok is false when the key is not
// usable at all; an invalid id is reported and still returned, so that the
// entry's fields get checked too.
func (pf *parsedFile) entryKey(kind string, k *yaml.Node) (string, bool) {
	id, ok := text(k)
	if !ok {
		pf.add(pf.line(k), kind, "", "", "a "+kind+" id must be a plain string, got "+describe(k))
		return "", false
	}
	if kind == "customer" && !ValidID(id) {
		pf.add(pf.line(k), kind, id, "", "invalid customer id: use 1-128 characters from A-Z a-z 0-9 . _ ~ @ + -, not starting with '.'")
	}
	if kind == "user" && !ValidUserID(id) {
		pf.add(pf.line(k), kind, id, "", "invalid user id: use 1-256 visible ASCII characters (no spaces, no ',')")
	}
	return id, true
}

// fieldMapping checks that v, an entry's value, is a mapping of fields.
func (pf *parsedFile) fieldMapping(kind, id string, v *yaml.Node) bool {
	if v.Kind != yaml.MappingNode {
		pf.add(pf.line(v), kind, id, "", "must be a mapping of fields, got "+describe(v))
		return false
	}
	return true
}

// fields walks the fields of an entry's mapping (checked by fieldMapping),
// skipping, with an error, unknown and repeated ones. It is a loop state
// rather than a callback so that an entry's variables stay on the stack: a
// closure over them cost a million users some eight allocations each.
type fields struct {
	m    *yaml.Node
	i    int
	seen [nFields]int
}

// next returns the next known, first-time field: its index, name, key and
// (resolved) value; ok is false past the last one.
func (pf *parsedFile) next(kind, id string, it *fields) (f int, name string, k, v *yaml.Node, ok bool) {
	for ; it.i+1 < len(it.m.Content); it.i += 2 {
		k, v := it.m.Content[it.i], resolve(it.m.Content[it.i+1])
		name, ok := text(k)
		if !ok {
			pf.add(pf.line(k), kind, id, "", "a field name must be a plain string, got "+describe(k))
			continue
		}
		f := fieldIndex(kind, name)
		if f < 0 {
			// Whole constants, not built per error: an aliased mapping of
			// unknown fields can give many more errors than are kept.
			msg := "unknown field (want name, type, parent, locations or disabled)"
			if kind == "user" {
				msg = "unknown field (want customer, role, locations, computers or disabled)"
			}
			pf.add(pf.line(k), kind, id, name, msg)
			continue
		}
		if it.seen[f] != 0 {
			pf.add(pf.line(k), kind, id, name, fmt.Sprintf("duplicate field (first at line %d)", it.seen[f]))
			continue
		}
		it.seen[f] = pf.line(k)
		it.i += 2
		return f, name, k, v, true
	}
	return 0, "", nil, nil, false
}

func (pf *parsedFile) str(kind, id, field string, v *yaml.Node) (string, bool) {
	s, ok := text(v)
	if !ok {
		pf.add(pf.line(v), kind, id, field, "must be a string, got "+describe(v))
	}
	return s, ok
}

func (pf *parsedFile) boolean(kind, id, field string, v *yaml.Node) bool {
	if v.Kind == yaml.ScalarNode && v.ShortTag() == tagBool {
		// The YAML 1.2 core schema spellings, which are all yaml.v3 tags
		// as !!bool; "yes", "on" and quoted "true" are strings, not booleans.
		switch v.Value {
		case "true", "True", "TRUE":
			return true
		case "false", "False", "FALSE":
			return false
		}
	}
	pf.add(pf.line(v), kind, id, field, "must be true or false, got "+describe(v))
	return false
}

// idList reads a list of customer, location or computer ids. Invalid
// entries are reported and left out. When lines is not nil, the line of each
// kept entry is appended to it.
func (pf *parsedFile) idList(kind, id, field string, v *yaml.Node, lines *[]int) ([]string, bool) {
	if v.Kind != yaml.SequenceNode {
		pf.add(pf.line(v), kind, id, field, "must be a list of ids, got "+describe(v))
		return nil, false
	}
	if len(v.Content) == 0 {
		return nil, true
	}
	out := make([]string, 0, len(v.Content))
	for _, e := range v.Content {
		s, ok := text(e)
		if !ok {
			pf.add(pf.line(e), kind, id, field, "an entry must be an id, got "+describe(e))
			continue
		}
		if !ValidID(s) {
			pf.add(pf.line(e), kind, id, field, "invalid id "+quoteShort(s)+": use 1-128 characters from A-Z a-z 0-9 . _ ~ @ + -, not starting with '.'")
			continue
		}
		out = append(out, s)
		if lines != nil {
			*lines = append(*lines, pf.line(e))
		}
	}
	return out, true
}

var typeList = strings.Join(Types, ", ")
var roleList = strings.Join(Roles, ", ")

func (pf *parsedFile) walkCustomers(m *yaml.Node) {
	n := len(m.Content) / 2
	pf.customers = slices.Grow(pf.customers, n)
	pf.cmeta = slices.Grow(pf.cmeta, n)
	for i := 0; i+1 < len(m.Content); i += 2 {
		pf.customer(m.Content[i], m.Content[i+1])
	}
}

// customer reads one entry of the customers mapping.
func (pf *parsedFile) customer(key, value *yaml.Node) {
	{
		k := resolve(key)
		id, ok := pf.entryKey("customer", k)
		if !ok {
			return
		}
		c := Customer{ID: id, File: pf.name, Line: pf.line(k)}
		var meta customerMeta
		var hasType bool
		m := resolve(value)
		isMapping := pf.fieldMapping("customer", id, m)
		it := fields{m: m}
		for f, name, _, v, ok := pf.next("customer", id, &it); isMapping && ok; f, name, _, v, ok = pf.next("customer", id, &it) {
			switch f {
			case fName:
				c.Name, _ = pf.str("customer", id, name, v)
			case fType:
				hasType = true
				if t, ok := pf.str("customer", id, name, v); ok {
					if c.Rank = Rank(t); c.Rank == 0 {
						pf.add(pf.line(v), "customer", id, name, "unknown type "+quoteShort(t)+" (want one of "+typeList+")")
					}
					c.Type = t
					if c.Rank > 0 {
						c.Type = Types[c.Rank-1] // shared, not one copy per customer
					}
				}
			case fParent:
				meta.parentLine = pf.line(v)
				var ok bool
				if c.Parent, ok = pf.str("customer", id, name, v); ok && c.Parent == "" {
					// "" means root internally, so an explicit empty parent
					// must not quietly make one.
					pf.add(pf.line(v), "customer", id, name, "must not be empty: remove the field on a root")
				}
			case fLocations:
				c.Locations, _ = pf.idList("customer", id, name, v, nil)
				c.Locations = dedupKeepOrder(c.Locations)
			case fDisabled:
				c.Disabled = pf.boolean("customer", id, name, v)
			}
		}
		if !isMapping {
			// Still declared (and already reported): keeping it spares its
			// users and children a "does not exist" error each.
			pf.customers = append(pf.customers, c)
			pf.cmeta = append(pf.cmeta, meta)
			return
		}
		if !hasType {
			pf.add(pf.line(k), "customer", id, "type", "missing (want one of "+typeList+")")
		}
		if c.Type == TypeSite && meta.parentLine == 0 {
			pf.add(pf.line(k), "customer", id, "parent", "missing: a site cannot be a root, it needs a parent")
		}
		pf.customers = append(pf.customers, c)
		pf.cmeta = append(pf.cmeta, meta)
	}
}

// dedupKeepOrder drops repeated locations from a customer's list, keeping
// the first of each. A location listed twice names the same location, so it
// is not worth failing a reload for; the declared order is kept because it
// is the operator's.
func dedupKeepOrder(s []string) []string {
	if len(s) < 2 {
		return s
	}
	if len(s) <= 32 {
		out := s[:1]
		for _, v := range s[1:] {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
		return slices.Clip(out)
	}
	seen := make(map[string]struct{}, len(s))
	out := s[:0]
	for _, v := range s {
		if _, dup := seen[v]; !dup {
			seen[v] = struct{}{}
			out = append(out, v)
		}
	}
	return slices.Clip(out)
}

func (pf *parsedFile) walkUsers(m *yaml.Node) {
	n := len(m.Content) / 2
	pf.users = slices.Grow(pf.users, n)
	pf.umeta = slices.Grow(pf.umeta, n)
	for i := 0; i+1 < len(m.Content); i += 2 {
		pf.user(m.Content[i], m.Content[i+1])
	}
}

// user reads one entry of the users mapping.
func (pf *parsedFile) user(key, value *yaml.Node) {
	{
		k := resolve(key)
		id, ok := pf.entryKey("user", k)
		if !ok {
			return
		}
		u := User{ID: id, File: pf.name, Line: int32(pf.line(k))}
		var meta userLines
		var hasCustomer, hasRole, roleOK bool
		var locLine, compLine int
		m := resolve(value)
		isMapping := pf.fieldMapping("user", id, m)
		it := fields{m: m}
		for f, name, fk, v, ok := pf.next("user", id, &it); isMapping && ok; f, name, fk, v, ok = pf.next("user", id, &it) {
			switch f {
			case fCustomer:
				hasCustomer = true
				meta.customerLine = int32(pf.line(v))
				u.Customer, _ = pf.str("user", id, name, v)
			case fRole:
				hasRole = true
				meta.roleLine = int32(pf.line(v))
				if r, ok := pf.str("user", id, name, v); ok {
					u.Role = canonicalRole(r)
					if roleOK = u.Role != ""; !roleOK {
						pf.add(pf.line(v), "user", id, name, "unknown role "+quoteShort(r)+" (want one of "+roleList+")")
						u.Role = r
					}
				}
			case fLocations:
				locLine = pf.line(fk)
				var ok bool
				meta.locFirst = int32(len(pf.locLines))
				u.Locations, ok = pf.idList("user", id, name, v, &pf.locLines)
				meta.locN = int32(len(u.Locations)) // set again once sorted, in pack
				if ok && len(v.Content) == 0 {
					pf.add(pf.line(v), "user", id, name, "must not be empty: list the user's locations, or remove the field for all of its customer's locations")
				}
			case fComputers:
				compLine = pf.line(fk)
				u.Computers, _ = pf.idList("user", id, name, v, nil)
				u.Computers = sortedSet(u.Computers)
			case fDisabled:
				u.Disabled = pf.boolean("user", id, name, v)
			}
		}
		if !isMapping {
			pf.addUser(u, meta) // still declared, for duplicate checks
			return
		}
		if !hasCustomer {
			pf.add(pf.line(k), "user", id, "customer", "missing (the id of the user's customer)")
		}
		if !hasRole {
			pf.add(pf.line(k), "user", id, "role", "missing (want one of "+roleList+")")
		}
		if roleOK {
			if locLine != 0 && u.Role != RoleCompanyAdministrator && u.Role != RoleCompanyUser {
				pf.add(locLine, "user", id, "locations", "only a company-administrator or a company-user can be limited to locations, not a "+u.Role)
			}
			if compLine != 0 && u.Role != RoleSubtenantUser {
				pf.add(compLine, "user", id, "computers", "only a subtenant-user has computers, not a "+u.Role)
			}
		}
		pf.addUser(u, meta)
	}
}

// pack puts the parsed entries in their final form, once per parse: their
// ids, names and lists move into one arena for the file, so that a loaded
// Data is a few large objects for the collector rather than one per string
// (at 200,000 users, ~400,000 objects took a pinned core ~30 ms to mark on
// every cycle), and each user's locations are sorted with their lines.
func (pf *parsedFile) pack() {
	if pf.pk != nil {
		pf.packNew()
		pf.pk = nil
		return
	}
	var a arena
	bytes, strs := 0, 0
	for i := range pf.customers {
		c := &pf.customers[i]
		bytes += len(c.ID) + len(c.Name) + len(c.Parent)
		for _, l := range c.Locations {
			bytes += len(l)
		}
		strs += len(c.Locations)
	}
	// A file's users name few customers each many times: one copy each.
	customers := make(map[string]string, min(len(pf.users), 1024))
	for i := range pf.users {
		u := &pf.users[i]
		bytes += len(u.ID)
		if _, ok := customers[u.Customer]; !ok {
			customers[u.Customer] = ""
			bytes += len(u.Customer)
		}
		for _, l := range u.Locations {
			bytes += len(l)
		}
		for _, l := range u.Computers {
			bytes += len(l)
		}
		strs += len(u.Locations) + len(u.Computers)
	}
	a.reserve(bytes, strs)
	for i := range pf.customers {
		pf.packCustomer(&a, i)
	}
	for i := range pf.users {
		pf.packUser(&a, customers, i)
	}
}

// packer packs a large file's entries as they are read, rather than all at
// the end: until packed, each entry's strings are separate objects, and at
// a million users in one file, holding them all until the end of the parse
// was some 50 MB more at the peak of a start or a reload. Its arena grows by
// chunks, so it suits large files only: a small file's is sized exactly.
type packer struct {
	a            arena
	customers    map[string]string
	doneC, doneU int // entries packed so far
}

// streamPackAt is the file size from which entries are packed as they are
// read.
const streamPackAt = 1 << 20

// packNew packs the entries read since the last call.
func (pf *parsedFile) packNew() {
	pk := pf.pk
	for ; pk.doneC < len(pf.customers); pk.doneC++ {
		pf.packCustomer(&pk.a, pk.doneC)
	}
	for ; pk.doneU < len(pf.users); pk.doneU++ {
		pf.packUser(&pk.a, pk.customers, pk.doneU)
	}
}

func (pf *parsedFile) packCustomer(a *arena, i int) {
	c := &pf.customers[i]
	c.ID, c.Name, c.Parent = a.str(c.ID), a.str(c.Name), a.str(c.Parent)
	c.Locations = a.strs(c.Locations)
}

// packUser packs user i; customers holds the customer ids already in the
// arena (a file's users name few customers each many times: one copy each).
func (pf *parsedFile) packUser(a *arena, customers map[string]string, i int) {
	u := &pf.users[i]
	u.ID = a.str(u.ID)
	if c := customers[u.Customer]; c != "" {
		u.Customer = c
	} else {
		c = a.str(u.Customer)
		customers[c] = c
		u.Customer = c
	}
	if len(u.Locations) > 0 {
		// idList kept a line for each location it kept.
		first := pf.lines(i).locFirst
		lines := pf.locLines[first : first+int32(len(u.Locations))]
		n := sortedSetWithLines(u.Locations, lines)
		pf.setLocN(i, int32(n))
		u.Locations = a.strs(u.Locations[:n])
	}
	u.Computers = a.strs(u.Computers)
}

// sortedSetWithLines sorts locs byte-wise, keeping each one's line beside
// it, drops repeats (keeping the first line of each), and returns how many
// are left at the front of both slices.
func sortedSetWithLines(locs []string, lines []int) int {
	if len(lines) != len(locs) {
		// Cannot happen (idList keeps a line for each entry it keeps); a
		// plain sorted set still gives the right data, with lines unknown.
		clear(lines)
		return len(sortedSet(locs))
	}
	idx := make([]int, len(locs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return strings.Compare(locs[a], locs[b]) })
	sl, ln := slices.Clone(locs), slices.Clone(lines)
	n := 0
	for _, i := range idx {
		if n > 0 && locs[n-1] == sl[i] {
			continue
		}
		locs[n], lines[n] = sl[i], ln[i]
		n++
	}
	return n
}

// sortedSet sorts s byte-wise and drops repeats, in place, so that a scope
// header is a plain join.
func sortedSet(s []string) []string {
	if len(s) < 2 {
		return s
	}
	slices.Sort(s)
	return slices.Clip(slices.Compact(s))
}
