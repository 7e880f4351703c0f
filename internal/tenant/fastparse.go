package tenant

import (
	"bytes"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v3"
)

// The fast path. yaml.v3 decodes a whole document into a node tree before
// anything can be read from it: at a million users (87 MB of YAML) that
// tree is ~1.5 GB and takes seconds to build and to collect, and it is what
// made a start or a reload of a big file peak at 5-6 times the memory the
// data keeps. Data files are, nearly always, one plain shape: the top-level
// keys at column 1, one line per id, one line per field, scalars and
// one-line lists. parseFast reads that shape straight from the bytes, one
// entry at a time, and hands each entry to the same code the node walk uses
// (customer, user) as a small node tree of its own, so every check, message
// and line is the walk's. Anything outside the shape it is sure of (anchors,
// aliases, tags, multi-line or escaped scalars, flow mappings, tabs,
// carriage returns, a second document, odd indentation ...) makes it give up
// before it has recorded anything, and the file is parsed by yaml.v3 as
// before. FuzzFastParse holds the two paths to the same result on every
// input the fast one accepts.

// fastParser reads one document of the plain shape.
type fastParser struct {
	src  []byte
	next int // offset of the next line to read
	num  int // its line number (1-based)

	// The current line, once read by peek.
	line      []byte
	lineStart int // its offset in src
	lineNum   int
	indent    int
	peeked    bool
	eof       bool

	// Nodes of the entry being read: reused for every entry, so an entry
	// costs no node allocation once the buffers have grown.
	nodes []yaml.Node
	ptrs  []*yaml.Node
}

// errNotPlain is the panic value by which a fastParser gives up.
type errNotPlain struct{}

// parseFast parses content when it has the plain shape, and reports
// whether it did; when it did not, nothing it read is kept.
func parseFast(name string, content []byte) (pf *parsedFile, ok bool) {
	p := &fastParser{src: content, num: 1}
	pf = &parsedFile{name: name}
	if len(content) >= streamPackAt {
		pf.pk = &packer{customers: make(map[string]string)}
	}
	defer func() {
		if r := recover(); r != nil {
			if _, give := r.(errNotPlain); !give {
				panic(r)
			}
			pf, ok = nil, false
		}
	}()
	if jsonStart(content) {
		p.jsonDocument(pf)
	} else {
		p.document(pf)
	}
	pf.noteDropped()
	pf.pack()
	return pf, true
}

func (p *fastParser) giveUp() { panic(errNotPlain{}) }

// peek reads the next line that is neither blank nor a comment, or sets
// eof. It gives up on a tab, a carriage return or a control character
// anywhere, and on a line that starts a document or a directive.
func (p *fastParser) peek() {
	if p.peeked {
		return
	}
	for {
		if p.next >= len(p.src) {
			p.eof, p.peeked, p.line = true, true, nil
			return
		}
		end := bytes.IndexByte(p.src[p.next:], '\n')
		start := p.next
		var line []byte
		if end < 0 {
			line = p.src[p.next:]
			p.next = len(p.src)
		} else {
			line = p.src[p.next : p.next+end]
			p.next += end + 1
		}
		num := p.num
		p.num++
		i := 0
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i == len(line) {
			continue // blank
		}
		if line[i] == '#' {
			checkText(line[i:])
			continue // a comment
		}
		checkText(line)
		if i == 0 && (line[0] == '-' || line[0] == '.' || line[0] == '%') {
			p.giveUp() // ---, ..., a directive, or a sequence at the top
		}
		p.line, p.lineStart, p.lineNum, p.indent, p.peeked = line, start, num, i, true
		return
	}
}

// take marks the peeked line as used.
func (p *fastParser) take() { p.peeked = false }

// checkText gives up on bytes the fast path does not take: control
// characters (tabs and carriage returns included), DEL, invalid UTF-8, a
// byte order mark, and the characters YAML 1.1 readers count as line breaks.
func checkText(b []byte) {
	for i := 0; i < len(b); {
		c := b[i]
		if c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			panic(errNotPlain{})
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError || r < 0xa0 || r == 0x2028 || r == 0x2029 || r == 0xfeff || r >= 0xfffe {
			panic(errNotPlain{})
		}
		i += size
	}
}

// node returns a fresh node of the current entry's buffer.
func (p *fastParser) node(kind yaml.Kind, line, col int) *yaml.Node {
	if len(p.nodes) == cap(p.nodes) {
		// Nodes handed out keep pointing into the old buffer, which stays
		// alive as long as they do.
		p.nodes = make([]yaml.Node, 0, max(64, 2*cap(p.nodes)))
	}
	p.nodes = append(p.nodes, yaml.Node{Kind: kind, Line: line, Column: col})
	return &p.nodes[len(p.nodes)-1]
}

// children returns room for n node pointers from the entry's buffer.
func (p *fastParser) children(n int) []*yaml.Node {
	if cap(p.ptrs)-len(p.ptrs) < n {
		p.ptrs = make([]*yaml.Node, 0, max(256, 2*cap(p.ptrs), n))
	}
	start := len(p.ptrs)
	p.ptrs = p.ptrs[:start+n]
	return p.ptrs[start : start+n : start+n]
}

// reset frees the entry's buffers for the next entry.
func (p *fastParser) reset() {
	clear(p.nodes)
	p.nodes = p.nodes[:0]
	clear(p.ptrs)
	p.ptrs = p.ptrs[:0]
}

// document reads the top-level keys and their sections.
func (p *fastParser) document(pf *parsedFile) {
	var st topState
	seen := map[string]bool{}
	for {
		p.peek()
		if p.eof {
			return
		}
		if p.indent != 0 {
			p.giveUp()
		}
		k, rest := p.key(0)
		p.take()
		if len(rest) > 0 {
			p.giveUp() // customers: {} and the like
		}
		name := k.Value
		if k.Style != 0 || (name != "customers" && name != "users") || seen[name] {
			p.giveUp() // the errors of an odd top level are the walk's to give
		}
		seen[name] = true
		p.peek()
		if p.eof || p.indent == 0 {
			p.giveUp() // an empty section: rare, and its node's line is yaml.v3's to say
		}
		indent := p.indent
		m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: p.lineNum, Column: indent + 1}
		key := *k
		if pf.topEntry(&st, &key, m) != name {
			p.giveUp() // cannot happen: checked above
		}
		// Sized once: growing a million users by doubling would copy
		// them over and over and leave the peak at twice the list.
		if n := p.countEntries(indent); name == "customers" {
			pf.customers = make([]Customer, 0, n)
			pf.cmeta = make([]customerMeta, 0, n)
		} else {
			pf.users = make([]User, 0, n)
			pf.umeta = make([]userMeta, 0, n)
		}
		for {
			p.entry(pf, name, indent)
			p.reset()
			if pf.pk != nil {
				pf.packNew()
			}
			p.peek()
			if p.eof || p.indent == 0 {
				break
			}
			if p.indent != indent {
				p.giveUp()
			}
		}
	}
}

// countEntries counts the lines from the current one on, up to the next
// line at column 1, that start at indent: the section's entries, if it has
// the plain shape (if not, the parse gives up anyway).
func (p *fastParser) countEntries(indent int) int {
	n := 0
	for rest := p.src[p.lineStart:]; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if line[0] != ' ' {
			break // the next top-level key
		}
		if len(line) > indent && line[indent] != ' ' && line[indent] != '#' && len(bytes.TrimLeft(line[:indent], " ")) == 0 {
			n++
		}
	}
	return n
}

// entry reads one id and its fields at indent, and hands them to the walk.
func (p *fastParser) entry(pf *parsedFile, section string, indent int) {
	k, rest := p.key(indent)
	p.take()
	if len(rest) > 0 {
		p.giveUp() // an id with an inline value: ~, {} ...
	}
	p.peek()
	if p.eof || p.indent <= indent {
		p.giveUp() // an id without fields
	}
	fieldIndent := p.indent
	m := p.node(yaml.MappingNode, p.lineNum, fieldIndent+1)
	m.Tag = "!!map"
	var kv [2 * nFields]*yaml.Node
	pairs := kv[:0]
	for {
		fk, rest := p.key(fieldIndent)
		p.take()
		var v *yaml.Node
		if len(rest) > 0 {
			v = p.inlineValue(rest)
		} else {
			v = p.blockList(fieldIndent)
		}
		if len(pairs) == len(kv) {
			p.giveUp() // more fields than there are: a mistake the walk reports
		}
		pairs = append(pairs, fk, v)
		p.peek()
		if p.eof || p.indent <= indent {
			break
		}
		if p.indent != fieldIndent {
			p.giveUp() // a continuation line, or a nested mapping
		}
	}
	m.Content = p.children(len(pairs))
	copy(m.Content, pairs)
	if section == "customers" {
		pf.customer(k, m)
	} else {
		pf.user(k, m)
	}
}

// key reads the key of the current line, which starts at indent, and
// returns its node and what follows the ':' (spaces and any comment
// trimmed).
func (p *fastParser) key(indent int) (*yaml.Node, []byte) {
	line := p.line[indent:]
	var k *yaml.Node
	var after []byte
	switch line[0] {
	case '\'', '"':
		var n int
		k, n = p.quoted(line, indent)
		after = line[n:]
		for len(after) > 0 && after[0] == ' ' {
			after = after[1:]
		}
		if len(after) == 0 || after[0] != ':' {
			p.giveUp()
		}
		after = after[1:]
	default:
		if !plainStart(line) {
			p.giveUp()
		}
		end := -1
		for i := 1; i < len(line); i++ {
			if line[i] == ':' && (i+1 == len(line) || line[i+1] == ' ') {
				end = i
				break
			}
			if line[i] == '#' && line[i-1] == ' ' {
				p.giveUp() // a comment before any ':'
			}
		}
		if end < 0 {
			p.giveUp()
		}
		text := bytes.TrimRight(line[:end], " ")
		k = p.scalar(string(text), p.lineNum, indent+1)
		after = line[end+1:]
	}
	if len(after) > 0 && after[0] != ' ' {
		p.giveUp()
	}
	if len(line)-len(after) > maxSimpleKey {
		p.giveUp() // YAML refuses a key this long: yaml.v3 says how
	}
	return k, trimComment(after)
}

// maxSimpleKey is below YAML's bound on an implicit key (1024 characters,
// the ':' included), in bytes: a key near it is left to yaml.v3.
const maxSimpleKey = 1000

// trimComment drops leading spaces, a comment and trailing spaces.
func trimComment(b []byte) []byte {
	for len(b) > 0 && b[0] == ' ' {
		b = b[1:]
	}
	if len(b) > 0 && b[0] == '#' {
		return nil
	}
	if i := bytes.Index(b, []byte(" #")); i >= 0 {
		b = b[:i]
	}
	return bytes.TrimRight(b, " ")
}

// plainStart reports whether b may start a plain scalar the fast path
// takes: not an indicator, and not "-" or a space or a bracket after it.
func plainStart(b []byte) bool {
	switch b[0] {
	case '-':
		return len(b) > 1 && (b[1] >= '0' && b[1] <= '9' || b[1] >= 'a' && b[1] <= 'z' || b[1] >= 'A' && b[1] <= 'Z')
	case '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', ' ':
		return false
	}
	return true
}

// scalar returns a plain scalar node, its tag resolved by yaml.v3.
func (p *fastParser) scalar(value string, line, col int) *yaml.Node {
	n := p.node(yaml.ScalarNode, line, col)
	n.Value = value
	switch {
	case value == "<<":
		n.Tag = "!!merge" // as yaml.v3's parser tags it; its resolve does not
	case value != "" && !resolvable[value[0]]:
		// What yaml.v3's resolve answers for these, without its cost (it
		// boxes the value it returns: an allocation per scalar).
		n.Tag = "!!str"
	default:
		n.Tag = n.ShortTag()
	}
	return n
}

// resolvable marks the first bytes of the plain scalars yaml.v3 may resolve
// to something other than a string (its resolve.go's resolveTable): a sign,
// a digit, '.', and the first letters of null, true, false and their kin.
var resolvable = func() (t [256]bool) {
	for _, c := range "+-0123456789.yYnNtTfFoO~" {
		t[c] = true
	}
	return t
}()

// quoted reads a one-line quoted scalar at the start of b (whose column is
// col-1) and returns its node and the bytes it took. A double-quoted one
// with an escape gives up.
func (p *fastParser) quoted(b []byte, col int) (*yaml.Node, int) {
	q := b[0]
	var val []byte
	i := 1
	for {
		j := bytes.IndexByte(b[i:], q)
		if j < 0 {
			p.giveUp() // unterminated on this line
		}
		val = append(val, b[i:i+j]...)
		i += j + 1
		if q == '\'' && i < len(b) && b[i] == '\'' {
			val = append(val, '\'') // '' is one '
			i++
			continue
		}
		break
	}
	if q == '"' && bytes.IndexByte(val, '\\') >= 0 {
		p.giveUp()
	}
	n := p.node(yaml.ScalarNode, p.lineNum, col+1)
	n.Value = string(val)
	n.Tag = "!!str"
	n.Style = yaml.SingleQuotedStyle
	if q == '"' {
		n.Style = yaml.DoubleQuotedStyle
	}
	return n, i
}

// inlineValue reads a field's value written after its key: a scalar or a
// one-line flow list. rest has its comment and spaces trimmed.
func (p *fastParser) inlineValue(rest []byte) *yaml.Node {
	start := p.offset(rest)
	switch rest[0] {
	case '\'', '"':
		n, used := p.quoted(rest, start)
		if used != len(rest) {
			p.giveUp()
		}
		return n
	case '[':
		return p.flowList(rest, start)
	}
	if !plainStart(rest) || bytes.Contains(rest, []byte(": ")) || rest[len(rest)-1] == ':' {
		p.giveUp()
	}
	return p.scalar(string(rest), p.lineNum, start+1)
}

// offset is where b (a subslice of the current line) starts in it.
func (p *fastParser) offset(b []byte) int {
	return cap(p.line) - cap(b)
}

// flowList reads a one-line flow sequence of scalars: [a, b, 'c'].
func (p *fastParser) flowList(b []byte, col int) *yaml.Node {
	seq := p.node(yaml.SequenceNode, p.lineNum, col+1)
	seq.Tag = "!!seq"
	seq.Style = yaml.FlowStyle
	var items []*yaml.Node
	i := 1
	skip := func() {
		for i < len(b) && b[i] == ' ' {
			i++
		}
	}
	skip()
	if i < len(b) && b[i] == ']' {
		i++
	} else {
		for {
			skip()
			if i >= len(b) {
				p.giveUp()
			}
			var n *yaml.Node
			switch b[i] {
			case '\'', '"':
				var used int
				n, used = p.quoted(b[i:], col+i)
				i += used
			default:
				if !plainStart(b[i:]) {
					p.giveUp()
				}
				j := i
				for j < len(b) && b[j] != ',' && b[j] != ']' {
					// Inside a flow list YAML readers disagree on more
					// characters than ids use: only those are taken.
					if c := b[j]; !(idByte[c] || c == ' ' || c == '/') {
						p.giveUp()
					}
					j++
				}
				text := bytes.TrimRight(b[i:j], " ")
				n = p.scalar(string(text), p.lineNum, col+i+1)
				i = j
			}
			items = append(items, n)
			skip()
			if i >= len(b) {
				p.giveUp()
			}
			if b[i] == ']' {
				i++
				break
			}
			if b[i] != ',' {
				p.giveUp()
			}
			i++
			skip()
			if i < len(b) && b[i] == ']' {
				p.giveUp() // a trailing comma
			}
		}
	}
	if i != len(b) {
		p.giveUp() // something after the ']'
	}
	if len(items) > 0 {
		seq.Content = p.children(len(items))
		copy(seq.Content, items)
	}
	return seq
}

// blockList reads a field's value written below its key: a block sequence
// of scalars, "- a" one per line, at the key's indent or deeper.
func (p *fastParser) blockList(keyIndent int) *yaml.Node {
	p.peek()
	if p.eof || p.indent < keyIndent || p.line[p.indent] != '-' {
		p.giveUp() // an empty value, or a nested mapping
	}
	indent := p.indent
	seq := p.node(yaml.SequenceNode, p.lineNum, indent+1)
	seq.Tag = "!!seq"
	var items []*yaml.Node
	for !p.eof && p.indent == indent && p.line[indent] == '-' {
		rest := p.line[indent+1:]
		if len(rest) == 0 || rest[0] != ' ' {
			p.giveUp()
		}
		rest = trimComment(rest)
		if len(rest) == 0 {
			p.giveUp() // a null entry
		}
		start := p.offset(rest)
		var n *yaml.Node
		switch rest[0] {
		case '\'', '"':
			var used int
			n, used = p.quoted(rest, start)
			if used != len(rest) {
				p.giveUp()
			}
		default:
			if !plainStart(rest) || bytes.Contains(rest, []byte(": ")) || rest[len(rest)-1] == ':' {
				p.giveUp()
			}
			n = p.scalar(string(rest), p.lineNum, start+1)
		}
		items = append(items, n)
		p.take()
		p.peek()
	}
	if !p.eof && p.indent > keyIndent && p.indent != indent {
		p.giveUp()
	}
	seq.Content = p.children(len(items))
	copy(seq.Content, items)
	return seq
}
