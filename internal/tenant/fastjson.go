package tenant

import (
	"bytes"

	yaml "go.yaml.in/yaml/v3"
)

// The fast path for JSON, which is YAML: a bundle's data file is one line
// of JSON (87 MB for a million users), which yaml.v3 would turn into one
// node tree like any other document. jsonDocument reads the plain shape of
// it, {"customers": {id: {field: value, ...}, ...}, "users": {...}}, with
// strings without escapes, numbers, true, false, null and flat lists as
// values, one entry at a time, as the YAML fast path does, and gives up on
// anything else (escapes, nesting, tabs, a key over YAML's length bound, a
// line break inside a key and its ':', ...). FuzzFastParse holds it to
// yaml.v3's result too.

// jsonStart reports whether content is a JSON object: its first byte past
// spaces and line breaks is '{'.
func jsonStart(content []byte) bool {
	for _, c := range content {
		switch c {
		case ' ', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// jsonWS skips spaces and line breaks, counting lines; it gives up on
// other whitespace.
func (p *fastParser) jsonWS() {
	for p.next < len(p.src) {
		switch p.src[p.next] {
		case ' ':
		case '\n':
			p.num++
		case '\t', '\r':
			p.giveUp()
		default:
			return
		}
		p.next++
	}
}

// jsonByte expects c (after whitespace).
func (p *fastParser) jsonByte(c byte) {
	p.jsonWS()
	if p.next >= len(p.src) || p.src[p.next] != c {
		p.giveUp()
	}
	p.next++
}

// jsonPeek returns the next byte after whitespace, or 0 at the end.
func (p *fastParser) jsonPeek() byte {
	p.jsonWS()
	if p.next >= len(p.src) {
		return 0
	}
	return p.src[p.next]
}

// jsonString reads a string without escapes at p.next and returns its
// node.
func (p *fastParser) jsonString() *yaml.Node {
	if p.jsonPeek() != '"' {
		p.giveUp()
	}
	start := p.next + 1
	end := bytes.IndexByte(p.src[start:], '"')
	if end < 0 {
		p.giveUp()
	}
	b := p.src[start : start+end]
	if bytes.IndexByte(b, '\\') >= 0 || bytes.IndexByte(b, '\n') >= 0 {
		p.giveUp()
	}
	checkText(b)
	n := p.node(yaml.ScalarNode, p.num, 0)
	n.Value = string(b)
	n.Tag = "!!str"
	n.Style = yaml.DoubleQuotedStyle
	p.next = start + end + 1
	return n
}

// jsonKey reads an object's key and its ':'.
func (p *fastParser) jsonKey() *yaml.Node {
	start := p.next
	k := p.jsonString()
	line := p.num
	p.jsonByte(':')
	if p.num != line || p.next-start > maxSimpleKey {
		p.giveUp() // YAML wants a key and its ':' on one line, and not too far apart
	}
	return k
}

// jsonScalar reads a string, a number, true, false or null.
func (p *fastParser) jsonScalar() *yaml.Node {
	c := p.jsonPeek()
	if c == '"' {
		return p.jsonString()
	}
	start := p.next
	for p.next < len(p.src) {
		c := p.src[p.next]
		if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\n' {
			break
		}
		p.next++
	}
	tok := p.src[start:p.next]
	switch string(tok) {
	case "true", "false", "null":
	default:
		if len(tok) == 0 || !(tok[0] == '-' || tok[0] >= '0' && tok[0] <= '9') {
			p.giveUp()
		}
		for _, c := range tok {
			if !(c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
				p.giveUp()
			}
		}
	}
	return p.scalar(string(tok), p.num, 0)
}

// jsonValue reads a field's value: a scalar or a list of scalars.
func (p *fastParser) jsonValue() *yaml.Node {
	if p.jsonPeek() != '[' {
		return p.jsonScalar()
	}
	seq := p.node(yaml.SequenceNode, p.num, 0)
	seq.Tag = "!!seq"
	seq.Style = yaml.FlowStyle
	p.next++
	var items []*yaml.Node
	if p.jsonPeek() == ']' {
		p.next++
		return seq
	}
	for {
		if c := p.jsonPeek(); c == '[' || c == '{' {
			p.giveUp()
		}
		items = append(items, p.jsonScalar())
		switch p.jsonPeek() {
		case ',':
			p.next++
			continue
		case ']':
			p.next++
		default:
			p.giveUp()
		}
		break
	}
	seq.Content = p.children(len(items))
	copy(seq.Content, items)
	return seq
}

// jsonDocument reads the top-level object and its sections.
func (p *fastParser) jsonDocument(pf *parsedFile) {
	p.jsonByte('{')
	var st topState
	seen := map[string]bool{}
	if p.jsonPeek() == '}' {
		p.next++
	} else {
		for {
			k := p.jsonKey()
			name := k.Value
			if (name != "customers" && name != "users") || seen[name] {
				p.giveUp()
			}
			seen[name] = true
			if p.jsonPeek() != '{' {
				p.giveUp()
			}
			m := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: p.num, Style: yaml.FlowStyle}
			key := *k
			if pf.topEntry(&st, &key, m) != name {
				p.giveUp()
			}
			p.reset()
			p.jsonSection(pf, name)
			if p.jsonPeek() == ',' {
				p.next++
				continue
			}
			p.jsonByte('}')
			break
		}
	}
	p.jsonWS()
	if p.next != len(p.src) {
		p.giveUp() // something after the object
	}
}

// jsonSection reads a section's object of entries.
func (p *fastParser) jsonSection(pf *parsedFile, name string) {
	p.jsonByte('{')
	if n := p.jsonCount(); n == 0 {
		// Nothing to size: left nil, as the walk leaves it.
	} else if name == "customers" {
		pf.customers = make([]Customer, 0, n)
		pf.cmeta = make([]customerMeta, 0, n)
	} else {
		pf.users = make([]User, 0, n)
		pf.umeta = make([]userMeta, 0, n)
	}
	if p.jsonPeek() == '}' {
		p.next++
		return
	}
	for {
		k := p.jsonKey()
		if p.jsonPeek() != '{' {
			p.giveUp() // an entry that is not an object: the walk's to report
		}
		m := p.node(yaml.MappingNode, p.num, 0)
		m.Tag = "!!map"
		m.Style = yaml.FlowStyle
		p.next++
		var kv [2 * nFields]*yaml.Node
		pairs := kv[:0]
		if p.jsonPeek() == '}' {
			p.next++
		} else {
			for {
				fk := p.jsonKey()
				v := p.jsonValue()
				if len(pairs) == len(kv) {
					p.giveUp()
				}
				pairs = append(pairs, fk, v)
				if p.jsonPeek() == ',' {
					p.next++
					continue
				}
				p.jsonByte('}')
				break
			}
		}
		m.Content = p.children(len(pairs))
		copy(m.Content, pairs)
		if name == "customers" {
			pf.customer(k, m)
		} else {
			pf.user(k, m)
		}
		p.reset()
		if pf.pk != nil {
			pf.packNew()
		}
		if p.jsonPeek() == ',' {
			p.next++
			continue
		}
		p.jsonByte('}')
		return
	}
}

// jsonCount counts the members of the object whose '{' was just read,
// without reading them, to size the lists once; it does not move p.
func (p *fastParser) jsonCount() int {
	depth, n := 0, 0
	for i := p.next; i < len(p.src); i++ {
		switch p.src[i] {
		case '"':
			j := bytes.IndexByte(p.src[i+1:], '"')
			if j < 0 {
				return n
			}
			if depth == 0 {
				n++ // a key at the object's own level (its value is an object)
			}
			i += j + 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return n
			}
			depth--
		}
	}
	return n
}
