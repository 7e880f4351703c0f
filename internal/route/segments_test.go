package route

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSegments(t *testing.T) {
	long := "/" + strings.Repeat("a", MaxPathLen-1) // exactly MaxPathLen bytes
	tests := []struct {
		name    string
		raw     string
		want    []string
		wantErr error
	}{
		// Accepted paths.
		{name: "root", raw: "/", want: []string{}},
		{name: "root with query", raw: "/?x=1", want: []string{}},
		{name: "one segment", raw: "/x", want: []string{"x"}},
		{name: "trailing slash ignored", raw: "/x/", want: []string{"x"}},
		{name: "typical", raw: "/api/v1/customers/c1/users/u1",
			want: []string{"api", "v1", "customers", "c1", "users", "u1"}},
		{name: "query cut", raw: "/api/v1/customers/c1/users?a=b",
			want: []string{"api", "v1", "customers", "c1", "users"}},
		{name: "query with dot segments is not checked", raw: "/a/b?a=../..%2F%00\\",
			want: []string{"a", "b"}},
		{name: "query after trailing slash", raw: "/a/b/?x", want: []string{"a", "b"}},
		{name: "empty query", raw: "/a?", want: []string{"a"}},
		{name: "encoded at sign", raw: "/users/alice%40contoso.example",
			want: []string{"users", "alice@contoso.example"}},
		{name: "encoded space", raw: "/a%20b", want: []string{"a b"}},
		{name: "encoded unsafe bytes are data", raw: "/a%22%3C%3E%5E%60%7B%7C%7D", want: []string{"a\"<>^`{|}"}},
		{name: "sub-delims and other allowed bytes", raw: "/a!$&'()*+,=:@~_-b", want: []string{"a!$&'()*+,=:@~_-b"}},
		{name: "encoded semicolon and hash are id bytes", raw: "/a%3Bb/c%23d", want: []string{"a;b", "c#d"}},
		{name: "lower-case hex", raw: "/a%3ab", want: []string{"a:b"}},
		{name: "upper-case hex", raw: "/a%3Ab", want: []string{"a:b"}},
		{name: "encoded multi-byte UTF-8", raw: "/caf%C3%A9/%e2%82%ac",
			want: []string{"café", "€"}},
		{name: "encoded 4-byte UTF-8", raw: "/%F0%9F%98%80", want: []string{"😀"}},
		{name: "raw UTF-8", raw: "/café/€", want: []string{"café", "€"}},
		{name: "raw lead byte with encoded continuation", raw: "/caf\xc3%A9", want: []string{"café"}},
		{name: "encoded question mark is data", raw: "/a%3Fb", want: []string{"a?b"}},
		{name: "encoded hash is data", raw: "/a%23b", want: []string{"a#b"}},
		{name: "double trailing slash after names with dots", raw: "/a.b/...//", wantErr: ErrEmptySegment},
		{name: "three dots is a name", raw: "/.../a.", want: []string{"...", "a."}},
		{name: "dot prefix", raw: "/.well-known/..x", want: []string{".well-known", "..x"}},
		{name: "mixed escaped and plain segments", raw: "/a/b%20c/d/e%40f",
			want: []string{"a", "b c", "d", "e@f"}},
		{name: "escape at segment end", raw: "/ab%41/c", want: []string{"abA", "c"}},
		{name: "exactly max length", raw: long, want: []string{long[1:]}},
		{name: "max length plus query", raw: long + "?" + strings.Repeat("q", 100), want: []string{long[1:]}},

		// Empty or relative.
		{name: "empty", raw: "", wantErr: ErrEmptyPath},
		{name: "query only", raw: "?a=b", wantErr: ErrEmptyPath},
		{name: "relative", raw: "api/v1", wantErr: ErrRelativePath},
		{name: "asterisk form", raw: "*", wantErr: ErrRelativePath},
		{name: "absolute form", raw: "http://evil.example/api/v1", wantErr: ErrRelativePath},
		{name: "dot relative", raw: "./a", wantErr: ErrRelativePath},
		{name: "backslash root", raw: "\\a", wantErr: ErrRelativePath},

		// Length.
		{name: "over max length", raw: long + "a", wantErr: ErrPathTooLong},
		{name: "over max length with trailing slash", raw: long + "/", wantErr: ErrPathTooLong},

		// Malformed escapes.
		{name: "bare percent", raw: "/a%", wantErr: ErrMalformedEscape},
		{name: "one hex digit", raw: "/a%4", wantErr: ErrMalformedEscape},
		{name: "one hex digit then slash", raw: "/a%4/b", wantErr: ErrMalformedEscape},
		{name: "non-hex digit", raw: "/a%4g", wantErr: ErrMalformedEscape},
		{name: "non-hex first digit", raw: "/a%g4", wantErr: ErrMalformedEscape},
		{name: "percent before query", raw: "/a%?41", wantErr: ErrMalformedEscape},
		{name: "unicode escape form", raw: "/a%u002e", wantErr: ErrMalformedEscape},

		// Empty segments.
		{name: "double slash root", raw: "//", wantErr: ErrEmptySegment},
		{name: "double slash inside", raw: "/a//b", wantErr: ErrEmptySegment},
		{name: "double trailing slash", raw: "/a//", wantErr: ErrEmptySegment},
		{name: "leading double slash", raw: "//a", wantErr: ErrEmptySegment},
		{name: "triple slash", raw: "///", wantErr: ErrEmptySegment},

		// Dot segments, literal and encoded.
		{name: "dot", raw: "/a/./b", wantErr: ErrDotSegment},
		{name: "dot dot", raw: "/a/../b", wantErr: ErrDotSegment},
		{name: "trailing dot", raw: "/a/.", wantErr: ErrDotSegment},
		{name: "dot dot path parameter", raw: "/a/..;/b", wantErr: ErrPathParameter},
		{name: "dot path parameter", raw: "/a/.;x=1/b", wantErr: ErrPathParameter},
		{name: "path parameter on an id", raw: "/api/v1/customers/contoso/users/alice%40contoso.example;x", wantErr: ErrPathParameter},
		{name: "jsessionid", raw: "/a;jsessionid=1/b", wantErr: ErrPathParameter},
		{name: "raw fragment", raw: "/api/v1/customers/contoso/users/alice#x", wantErr: ErrFragment},
		{name: "dot dot encoded semicolon", raw: "/a/..%3Bjsessionid/b", wantErr: ErrDotSegment},
		{name: "trailing dot dot slash", raw: "/a/../", wantErr: ErrDotSegment},
		{name: "leading dot dot", raw: "/../a", wantErr: ErrDotSegment},
		{name: "encoded dot dot", raw: "/a/%2e%2e/b", wantErr: ErrEncodedDot},
		{name: "encoded dot dot upper", raw: "/a/%2E%2E/b", wantErr: ErrEncodedDot},
		{name: "half encoded dot dot", raw: "/a/.%2e/b", wantErr: ErrEncodedDot},
		{name: "encoded dot in a name", raw: "/alice%2Eexample", wantErr: ErrEncodedDot},
		{name: "overlong encoded dot", raw: "/%c0%ae%c0%ae/a", wantErr: ErrInvalidUTF8},
		{name: "three-byte overlong dot", raw: "/%e0%80%ae", wantErr: ErrInvalidUTF8},
		{name: "overlong slash", raw: "/a%c0%afb", wantErr: ErrInvalidUTF8},

		// Forbidden encoded bytes, both hex cases.
		{name: "encoded slash upper", raw: "/a%2Fb", wantErr: ErrEncodedSlash},
		{name: "encoded slash lower", raw: "/a%2fb", wantErr: ErrEncodedSlash},
		{name: "encoded backslash upper", raw: "/a%5Cb", wantErr: ErrEncodedBackslash},
		{name: "encoded backslash lower", raw: "/a%5cb", wantErr: ErrEncodedBackslash},
		{name: "encoded percent", raw: "/a%25b", wantErr: ErrEncodedPercent},
		{name: "double-encoded slash", raw: "/a%252Fb", wantErr: ErrEncodedPercent},
		{name: "encoded NUL", raw: "/a%00b", wantErr: ErrEncodedControl},
		{name: "encoded newline", raw: "/a%0Ab", wantErr: ErrEncodedControl},
		{name: "encoded carriage return lower", raw: "/a%0db", wantErr: ErrEncodedControl},
		{name: "encoded tab", raw: "/a%09", wantErr: ErrEncodedControl},
		{name: "encoded unit separator", raw: "/a%1F", wantErr: ErrEncodedControl},
		{name: "encoded DEL", raw: "/a%7F", wantErr: ErrEncodedControl},
		{name: "encoded DEL lower", raw: "/a%7f", wantErr: ErrEncodedControl},

		// Raw forbidden bytes.
		{name: "backslash", raw: "/a\\b", wantErr: ErrBackslash},
		{name: "backslash dot dot", raw: "/a/..\\b", wantErr: ErrBackslash},
		{name: "NUL", raw: "/a\x00b", wantErr: ErrControlByte},
		{name: "newline", raw: "/a\nb", wantErr: ErrControlByte},
		{name: "tab", raw: "/a\tb", wantErr: ErrControlByte},
		{name: "unit separator", raw: "/a\x1f", wantErr: ErrControlByte},
		{name: "DEL", raw: "/a\x7f", wantErr: ErrControlByte},
		{name: "raw space", raw: "/api/v1/customers/contoso/users/alice@contoso.example /x", wantErr: ErrSpace},
		{name: "raw trailing space", raw: "/a/b ", wantErr: ErrSpace},
		{name: "raw double quote", raw: "/a\"b", wantErr: ErrUnsafeByte},
		{name: "raw less-than", raw: "/a<b", wantErr: ErrUnsafeByte},
		{name: "raw greater-than", raw: "/a>b", wantErr: ErrUnsafeByte},
		{name: "raw caret", raw: "/a^b", wantErr: ErrUnsafeByte},
		{name: "raw backtick", raw: "/a`b", wantErr: ErrUnsafeByte},
		{name: "raw open brace", raw: "/a{b", wantErr: ErrUnsafeByte},
		{name: "raw pipe", raw: "/a|b", wantErr: ErrUnsafeByte},
		{name: "raw close brace", raw: "/a}b", wantErr: ErrUnsafeByte},
		{name: "unsafe byte in the query is not checked", raw: "/a?x={y}|z w", want: []string{"a"}},

		// Invalid UTF-8, raw and decoded.
		{name: "raw 0xff", raw: "/a\xffb", wantErr: ErrInvalidUTF8},
		{name: "raw truncated sequence", raw: "/caf\xc3", wantErr: ErrInvalidUTF8},
		{name: "raw surrogate", raw: "/\xed\xa0\x80", wantErr: ErrInvalidUTF8},
		{name: "encoded 0xff", raw: "/a%ffb", wantErr: ErrInvalidUTF8},
		{name: "encoded 0xFF upper", raw: "/a%FF", wantErr: ErrInvalidUTF8},
		{name: "encoded bad continuation", raw: "/%c3%28", wantErr: ErrInvalidUTF8},
		{name: "encoded truncated sequence", raw: "/%e2%82", wantErr: ErrInvalidUTF8},
		{name: "encoded surrogate", raw: "/%ed%a0%80", wantErr: ErrInvalidUTF8},
		{name: "encoded lead then raw ASCII", raw: "/%c3(", wantErr: ErrInvalidUTF8},
		{name: "invalid UTF-8 in a later escaped segment", raw: "/a%20b/c%ff", wantErr: ErrInvalidUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Segments(tt.raw, nil)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Segments(%q) error = %v, want %v", tt.raw, err, tt.wantErr)
				}
				var pe *PathError
				if !errors.As(err, &pe) {
					t.Fatalf("Segments(%q) error %T is not a *PathError", tt.raw, err)
				}
				if got != nil {
					t.Errorf("Segments(%q) = %q with an error, want nil", tt.raw, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Segments(%q) error = %v, want nil", tt.raw, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Segments(%q) = %q, want %q", tt.raw, got, tt.want)
			}
		})
	}
}

func TestSegmentsErrorOffset(t *testing.T) {
	tests := []struct {
		raw    string
		offset int
	}{
		{raw: "/a%2Fb", offset: 2},
		{raw: "/abc/d%zz", offset: 6},
		{raw: "/abc//d", offset: 5},
		{raw: "/a/../b", offset: 3},
		{raw: "/ok/x\x00", offset: 5},
		{raw: "/ok/%ff", offset: 4},
		{raw: "/ok/a b", offset: 5},
		{raw: "/ok/x/{y}", offset: 6},
		{raw: "rel", offset: 0},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			_, err := Segments(tt.raw, nil)
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Fatalf("Segments(%q) error = %v, want a *PathError", tt.raw, err)
			}
			if pe.Offset != tt.offset {
				t.Errorf("Segments(%q) offset = %d, want %d", tt.raw, pe.Offset, tt.offset)
			}
			// The message names the check and must not echo the path, which
			// may hold bytes unfit for a log line.
			msg := err.Error()
			if !strings.Contains(msg, pe.Err.Error()) || strings.Contains(msg, tt.raw) {
				t.Errorf("Segments(%q) message = %q", tt.raw, msg)
			}
		})
	}
}

func TestSegmentsReusesBuffer(t *testing.T) {
	buf := make([]string, 0, 16)
	got, err := Segments("/api/v1/customers/c1/users", buf)
	if err != nil {
		t.Fatal(err)
	}
	if &got[:1][0] != &buf[:1][0] {
		t.Error("result does not use the provided buffer")
	}
	// A second call overwrites the same array; the first result's view of it
	// changes, which is why callers reuse buf only once done with a result.
	got2, err := Segments("/x%20y", got)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"x y"}; !slices.Equal(got2, want) {
		t.Errorf("second call = %q, want %q", got2, want)
	}
	// A too-small buffer still works.
	got3, err := Segments("/a/b/c", make([]string, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(got3, want) {
		t.Errorf("small buffer = %q, want %q", got3, want)
	}
}

func TestSegmentsDecodedSegmentsDoNotOverlap(t *testing.T) {
	// All decoded segments share one buffer; each must keep its own bytes.
	got, err := Segments("/a%20b/plain/%40c/%e2%82%acd%3A", nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a b", "plain", "@c", "€d:"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSegmentsAllocs(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		max  float64
	}{
		{name: "plain", raw: "/api/v1/customers/contoso/locations/hq/users/u-17?limit=10", max: 0},
		{name: "escaped", raw: "/api/v1/customers/contoso/users/alice%40contoso.example/x%20y", max: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]string, 0, 16)
			allocs := testing.AllocsPerRun(100, func() {
				if _, err := Segments(tt.raw, buf); err != nil {
					t.Fatal(err)
				}
			})
			if allocs > tt.max {
				t.Errorf("Segments(%q) allocs = %v, want <= %v", tt.raw, allocs, tt.max)
			}
		})
	}
}

// FuzzSegments checks the guarantees the policy relies on: whatever passes has
// no dot segment and no segment holding a separator, a control byte or invalid
// UTF-8; nothing panics; and a path without escapes splits exactly as written.
func FuzzSegments(f *testing.F) {
	for _, s := range []string{
		"/",
		"/api/v1/customers/c1/users/u1",
		"/api/v1/customers/c1/users/alice%40contoso.example/",
		"/api/v1/customers/c1/locations/hq/computers/pc-1/agent-jobs?x=../..",
		"/a/%2e%2e/b",
		"/a/%c0%ae/b",
		"/a%2Fb%5c%25%00",
		"/caf%C3%A9/\xff",
		"//a//",
		"/a\\..\\b",
		"/%252e%252e/",
		"/a b/{c}|d^e`f\"<g>",
	} {
		f.Add(s)
	}
	isRes := func(s string) bool { _, ok := catalog[s]; return ok }
	f.Fuzz(func(t *testing.T, raw string) {
		segs, err := Segments(raw, nil)
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) || pe.Err == nil {
				t.Fatalf("Segments(%q) error %v is not a *PathError with a check", raw, err)
			}
			return
		}
		for _, s := range segs {
			if s == "" || s == "." || s == ".." {
				t.Fatalf("Segments(%q) yields segment %q", raw, s)
			}
			if strings.ContainsAny(s, "/\\") {
				t.Fatalf("Segments(%q) yields segment %q with a separator", raw, s)
			}
			for i := 0; i < len(s); i++ {
				if s[i] < 0x20 || s[i] == 0x7f {
					t.Fatalf("Segments(%q) yields segment %q with control byte %#x", raw, s, s[i])
				}
			}
			if !utf8.ValidString(s) {
				t.Fatalf("Segments(%q) yields invalid UTF-8 segment %q", raw, s)
			}
		}
		path, _, _ := strings.Cut(raw, "?")
		if i := strings.IndexAny(path, " \"<>^`{|};#"); i >= 0 {
			t.Fatalf("Segments(%q) accepts raw %q", raw, path[i])
		}
		if !strings.Contains(path, "%") {
			var want []string
			if path != "/" {
				want = strings.Split(strings.TrimSuffix(path, "/")[1:], "/")
			}
			if !slices.Equal(segs, want) {
				t.Fatalf("Segments(%q) = %q, want %q", raw, segs, want)
			}
		}
		Parse(segs, isRes) // must not panic on anything Segments accepts
	})
}
