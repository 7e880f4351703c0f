// Package route turns a raw request target into the decoded path segments the
// policy matches on (the path checks of tenantgate help paths) and matches those
// segments against the request grammar (tenantgate help requests).
//
// Both run on every request, so the success path uses no regexp, fmt or
// net/url: a segment without escapes is a substring of the input, all decoded
// segments of one path share a single allocation, and the segment slice can be
// supplied by the caller.
package route

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxPathLen is the longest accepted path in bytes, raw and without the query
// (tenantgate help paths).
const MaxPathLen = 4096

// Sentinel errors, one per path check of tenantgate help paths. Segments wraps them in
// a *PathError; compare with errors.Is. Every one of them means bad_path.
var (
	ErrEmptyPath        = errors.New("empty path")
	ErrRelativePath     = errors.New("path does not start with '/'")
	ErrPathTooLong      = errors.New("path longer than 4096 bytes")
	ErrMalformedEscape  = errors.New("'%' not followed by two hex digits")
	ErrEmptySegment     = errors.New("empty segment")
	ErrDotSegment       = errors.New("'.' or '..' segment")
	ErrEncodedSlash     = errors.New("percent-encoded '/'")
	ErrEncodedBackslash = errors.New("percent-encoded '\\'")
	ErrEncodedDot       = errors.New("percent-encoded '.'")
	ErrEncodedPercent   = errors.New("percent-encoded '%'")
	ErrEncodedControl   = errors.New("percent-encoded control character")
	ErrBackslash        = errors.New("backslash")
	// ErrPathParameter and ErrFragment extend tenantgate help paths: servlet
	// containers (Tomcat, Spring) drop a ";..." path parameter before they
	// route, so "users/alice;x" would be users/alice upstream while the
	// policy saw another id; and a raw '#' never belongs in a request
	// target. Encoded, %3B and %23 are ordinary bytes of an id.
	ErrPathParameter = errors.New("';' path parameter")
	ErrFragment      = errors.New("'#' in the path")
	// ErrSpace and ErrUnsafeByte are raw bytes RFC 3986 never allows in a
	// path. Proxies and upstream frameworks differ on them (some reject,
	// some encode, some truncate at a space), so the upstream could route
	// another path than the one decided on. Encoded (%20, %7B, ...) they are
	// ordinary bytes.
	ErrSpace       = errors.New("raw space")
	ErrUnsafeByte  = errors.New("raw '\"', '<', '>', '^', '`', '{', '|' or '}'")
	ErrControlByte = errors.New("NUL or control byte")
	ErrInvalidUTF8 = errors.New("invalid UTF-8")
)

// PathError is a failed path check: which check (Err, one of the Err*
// sentinels) and where. It never quotes the path itself, so it is safe to log
// even when the path holds control bytes or invalid UTF-8.
type PathError struct {
	// Offset is the byte offset in the raw target where the check failed:
	// the start of the bad escape, byte or segment.
	Offset int
	Err    error
}

func (e *PathError) Error() string {
	msg := "unknown check"
	if e.Err != nil {
		msg = e.Err.Error()
	}
	return "route: bad path at byte " + strconv.Itoa(e.Offset) + ": " + msg
}

func (e *PathError) Unwrap() error { return e.Err }

func pathError(err error, offset int) error { return &PathError{Offset: offset, Err: err} }

// Segments applies every path check of tenantgate help paths to a raw request target
// and returns its percent-decoded segments.
//
// The query is cut at the first '?'. The root slash yields no leading "" and
// one trailing slash is ignored, so "/" gives zero segments and "/x/" is "/x".
// An error (always a *PathError wrapping one of the Err* sentinels) means
// bad_path.
//
// buf is an optional backing array: the result is appended to buf[:0], so a
// caller that passes a slice with enough capacity gets no allocation for the
// slice. The result aliases buf, and segments without escapes are substrings of
// raw.
func Segments(raw string, buf []string) (segs []string, err error) {
	path := raw
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		path = raw[:i]
	}
	switch {
	case len(path) > MaxPathLen:
		return nil, pathError(ErrPathTooLong, MaxPathLen)
	case path == "":
		return nil, pathError(ErrEmptyPath, 0)
	case path[0] != '/':
		// Also catches the absolute form ("http://h/p") and the asterisk
		// form ("*"): the proxy must hand us an origin-form path.
		return nil, pathError(ErrRelativePath, 0)
	}

	segs = buf[:0]
	if len(path) == 1 {
		return segs, nil
	}
	// body holds the segments: without the root slash and without the one
	// trailing slash that is ignored. Any further empty segment, including the
	// one left by "//" or "/x//", is an error below.
	body := path[1:]
	if body[len(body)-1] == '/' {
		body = body[:len(body)-1]
	}
	if n := strings.Count(body, "/") + 1; cap(segs) < n {
		segs = make([]string, 0, n)
	}

	// dec receives the decoded bytes of every segment that has escapes. It is
	// grown once, to the raw length still to scan (decoding never lengthens),
	// so it never reallocates and substrings of dec.String() stay valid and
	// unchanged while later segments are appended.
	var dec strings.Builder
	for start := 0; ; {
		end := strings.IndexByte(body[start:], '/')
		if end < 0 {
			end = len(body)
		} else {
			end += start
		}
		seg, err := segment(body[start:end], 1+start, &dec, len(body)-start)
		if err != nil {
			return nil, err
		}
		segs = append(segs, seg)
		if end == len(body) {
			return segs, nil
		}
		start = end + 1
	}
}

// segment checks one raw segment, found at byte offset off of the raw target,
// and returns it decoded. rest is the raw length from this segment to the end
// of the path, the most that decoding it and every later segment can need.
func segment(s string, off int, dec *strings.Builder, rest int) (string, error) {
	if s == "" {
		return "", pathError(ErrEmptySegment, off)
	}
	escapes, high := false, false
	for i := 0; i < len(s); i++ {
		// One table lookup per byte: most bytes are ordinary.
		switch rawByte[s[i]] {
		case rawOrdinary:
		case rawPercent:
			if i+2 >= len(s) {
				return "", pathError(ErrMalformedEscape, off+i)
			}
			b, ok := unhex(s[i+1], s[i+2])
			if !ok {
				return "", pathError(ErrMalformedEscape, off+i)
			}
			if err := forbiddenEscape(b); err != nil {
				return "", pathError(err, off+i)
			}
			escapes = true
			i += 2
		case rawHigh:
			high = true
		case rawBackslash:
			return "", pathError(ErrBackslash, off+i)
		case rawSemicolon:
			return "", pathError(ErrPathParameter, off+i)
		case rawHash:
			return "", pathError(ErrFragment, off+i)
		case rawSpace:
			return "", pathError(ErrSpace, off+i)
		case rawUnsafe:
			return "", pathError(ErrUnsafeByte, off+i)
		default: // rawControl
			return "", pathError(ErrControlByte, off+i)
		}
	}
	if !escapes {
		// An encoded '.' is refused above, so only a literal dot segment can
		// decode to "." or "..".
		if isDotSegment(s) {
			return "", pathError(ErrDotSegment, off)
		}
		if high && !utf8.ValidString(s) {
			return "", pathError(ErrInvalidUTF8, off)
		}
		return s, nil
	}

	if dec.Cap() == 0 {
		dec.Grow(rest)
	}
	from := dec.Len()
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' {
			c, _ = unhex(s[i+1], s[i+2]) // validated by the first pass
			i += 2
		}
		dec.WriteByte(c)
	}
	d := dec.String()[from:]
	// Raw and decoded bytes may combine into one rune, so validate the decoded
	// form. Go's decoder rejects overlong forms and surrogates, which keeps
	// "%c0%ae" (an overlong '.') out.
	if !utf8.ValidString(d) {
		return "", pathError(ErrInvalidUTF8, off)
	}
	if isDotSegment(d) { // "..%3Bx" decodes to "..;x"
		return "", pathError(ErrDotSegment, off)
	}
	return d, nil
}

// Classes of raw path bytes, for the one lookup per byte in segment.
const (
	rawOrdinary = iota
	rawPercent
	rawHigh // a byte of a multi-byte UTF-8 sequence, validated afterwards
	rawBackslash
	rawSemicolon
	rawHash
	rawSpace
	rawUnsafe // " < > ^ ` { | }
	rawControl
)

var rawByte = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = rawControl
	}
	t[0x7f] = rawControl
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = rawHigh
	}
	t['%'], t['\\'], t[';'], t['#'], t[' '] = rawPercent, rawBackslash, rawSemicolon, rawHash, rawSpace
	for _, c := range "\"<>^`{|}" {
		t[c] = rawUnsafe
	}
	return t
}()

// isDotSegment reports "." and "..", also with a ";" path parameter after
// them: Tomcat, Spring and other servlet containers drop ";..." before
// resolving dot segments, so "..;" would climb a level upstream after our
// checks saw a harmless name. (An extension to the path checks, in
// `tenantgate help choices`.)
func isDotSegment(s string) bool {
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return s == "." || s == ".."
}

// forbiddenEscape reports why a percent-encoded byte is refused, or nil when
// it is decoded like any other byte. An encoded '/' or '\' would let a segment
// carry a separator past us that the upstream may split on; an encoded '.'
// could rebuild a dot segment; an encoded '%' invites double decoding.
func forbiddenEscape(b byte) error {
	switch {
	case b == '/':
		return ErrEncodedSlash
	case b == '\\':
		return ErrEncodedBackslash
	case b == '.':
		return ErrEncodedDot
	case b == '%':
		return ErrEncodedPercent
	case b < 0x20 || b == 0x7f:
		return ErrEncodedControl
	}
	return nil
}

// unhex decodes two hex digits of either case.
func unhex(hi, lo byte) (byte, bool) {
	h, ok1 := hexVal(hi)
	l, ok2 := hexVal(lo)
	return h<<4 | l, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
