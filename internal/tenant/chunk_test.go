package tenant

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

type chunksKept int

const (
	dropped chunksKept = iota
	kept
	either // depends on where the cuts fall
)

// chunkCases are files whose users or customers section can be cut. Each
// is loaded with base as c.yaml.
var chunkCases = []struct {
	name string
	x    string
	// keep: whether the chunked parse is expected to be kept, or thrown
	// away for a plain parse, for every number of cuts.
	keep chunksKept
}{
	{"plain entries", `customers:
  zed:
    type: distributor
    locations: [a, b]
  yan:
    type: reseller
    parent: zed
users:
  u1:
    customer: zed
    role: company-owner
  u2:
    customer: zed
    role: company-user
    locations: [b, a]
  u3:
    customer: yan
    role: subtenant-user
    computers: [pc-2, pc-1]
  u4:
    customer: yan
    role: invoice-auditor
    disabled: true
`, kept},
	{"comments, blank lines, quotes, flow entries, CRLF", strings.ReplaceAll(`# header comment
users: # all of them

  # a comment at the entry indentation is not a cut
  "u1":
    customer: contoso
    role: company-user   # trailing
  'u2': {customer: contoso, role: invoice-auditor}
# a comment at column 0 does not end the section

  u3:
    customer: contoso
    role: company-administrator
    locations:
      - hq
      - branch-1
  u4: {customer: contoso,
       role: invoice-auditor}
`, "\n", "\r\n"), kept},
	{"section between other keys", `customers:
  zed:
    type: distributor
users:
  u1:
    customer: zed
    role: company-user
  u2:
    customer: zed
    role: company-user
`, kept},

	// The cases below must fall back to a plain parse.
	{"header inside a quoted string", `customers:
  zed:
    name: "a
users:
  "
    type: distributor
  yan:
    type: reseller
    parent: zed
  xan:
    type: reseller
    parent: zed
  wan:
    type: reseller
    parent: zed
`, dropped},
	{"alias to an anchor in an earlier chunk", `users:
  u1: &auditor
    customer: contoso
    role: invoice-auditor
  u2:
    customer: contoso
    role: company-user
  u3: *auditor
`, dropped},
	{"duplicate top-level key across the section", `customers:
  zed:
    type: distributor
users:
  u1:
    customer: zed
    role: company-user
  u2:
    customer: zed
    role: company-user
customers:
  yan:
    type: distributor
`, dropped},
	{"second document after the section", `users:
  u1:
    customer: contoso
    role: company-user
  u2:
    customer: contoso
    role: company-user
---
users: {}
`, dropped},
	{"errors inside the section", `users:
  u1:
    customer: contoso
    role: company-user
  u2:
    customer: nobody
    role: boss
  u3:
    customer: contoso
    colour: red
`, dropped},
	{"multi-line quoted scalar spanning a cut", `customers:
  zed:
    type: distributor
    name: "first
  yan:
    line"
  xan:
    type: distributor
`, either},
}

// TestChunkedParseMatchesPlain loads every case plainly and with every
// number of cuts, and requires the very same Data or Errors.
func TestChunkedParseMatchesPlain(t *testing.T) {
	for _, tc := range chunkCases {
		files := []File{{"c.yaml", []byte(base)}, {"x.yaml", []byte(tc.x)}}
		wantData, wantErr := load(files, 1, 0)
		for parts := 2; parts <= 8; parts++ {
			t.Run(fmt.Sprintf("%s/%d", tc.name, parts), func(t *testing.T) {
				plan := planChunks(files[1].Content, parts, 1)
				if plan == nil {
					t.Fatalf("no chunk plan")
				}
				var chunks []*parsedFile
				for _, c := range chunkParsers(files[1], plan) {
					chunks = append(chunks, c.parse())
				}
				if got := verifyChunks(plan, chunks); tc.keep != either && got != (tc.keep == kept) {
					t.Errorf("verifyChunks = %v, want %v (cuts %v)", got, tc.keep == kept, plan.cuts)
				}

				gotData, gotErr := load(files, parts, 1)
				if !reflect.DeepEqual(gotData, wantData) {
					t.Errorf("chunked Data differs from the plain parse's")
				}
				if !reflect.DeepEqual(gotErr, wantErr) {
					t.Errorf("chunked errors differ:\n got  %v\n want %v", gotErr, wantErr)
				}
			})
		}
	}
}

// TestChunkedParseDuplicateAcrossChunks: a duplicate id in two chunks of a
// file is found by the merge, with the plain parse's lines.
func TestChunkedParseDuplicateAcrossChunks(t *testing.T) {
	x := "users:\n  u1:\n    customer: contoso\n    role: company-user\n  u2:\n    customer: contoso\n    role: company-user\n  u1:\n    customer: contoso\n    role: company-user\n"
	files := []File{{"c.yaml", []byte(base)}, {"x.yaml", []byte(x)}}
	_, err := load(files, 3, 1)
	es, _ := err.(Errors)
	checkErrors(t, es, []wantErr{{"x.yaml", 8, "user", "u1", "", "duplicate user id in this file (first at line 2)"}})
}

func TestPlanChunks(t *testing.T) {
	big := genData(200, 2000)[1].Content
	tests := []struct {
		name     string
		content  string
		parts    int
		minChunk int
		cuts     int // -1: no plan
	}{
		{"small file", string(big[:1000]), 4, 1 << 20, -1},
		{"one worker", string(big), 1, 1, -1},
		{"chunks of at least minChunk", string(big), 8, len(big) / 4, 2},
		{"one cut per extra worker", string(big), 4, 1, 3},
		{"flow-style section", "users: {u1: {customer: c, role: company-user}, u2: {customer: c, role: company-user}}\n", 4, 1, -1},
		{"anchored header", "users: &all\n  u1:\n    customer: c\n  u2:\n    customer: c\n", 4, 1, -1},
		{"tab-indented section", "users:\n\tu1: x\n\tu2: y\n", 4, 1, -1},
		{"list instead of mapping", "users:\n  - u1\n  - u2\n  - u3\n", 4, 1, -1},
		{"one entry", "users:\n  u1:\n    customer: c\n    role: company-user\n", 4, 1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := planChunks([]byte(tt.content), tt.parts, tt.minChunk)
			got := -1
			if plan != nil {
				got = len(plan.cuts)
			}
			if got != tt.cuts {
				t.Fatalf("got %d cuts, want %d", got, tt.cuts)
			}
			if plan == nil {
				return
			}
			// Every cut is at the start of an entry line.
			for _, c := range plan.cuts {
				line := 1 + strings.Count(tt.content[:c.off], "\n")
				if line != c.line || !strings.HasPrefix(tt.content[c.off:], "  user") {
					t.Errorf("cut at line %d (counted %d): %.20q", c.line, line, tt.content[c.off:])
				}
			}
		})
	}
}

func TestChunkedParseMatchesPlainOnGeneratedData(t *testing.T) {
	files := genData(300, 3000)
	wantData, wantErr := load(files, 1, 0)
	if wantErr != nil {
		t.Fatal(wantErr)
	}
	for _, parts := range []int{2, 3, 7} {
		t.Run(fmt.Sprint(parts), func(t *testing.T) {
			if planChunks(files[1].Content, parts, 1<<12) == nil {
				t.Fatalf("users.yaml is not cut")
			}
			gotData, err := load(files, parts, 1<<12)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotData, wantData) {
				t.Errorf("chunked Data differs from the plain parse's")
			}
		})
	}
}

// FuzzChunkedParseMatchesPlain: whatever the text, a chunked load gives the
// plain load's Data or Errors.
func FuzzChunkedParseMatchesPlain(f *testing.F) {
	for _, tc := range chunkCases {
		f.Add(tc.x, uint8(3))
	}
	f.Fuzz(func(t *testing.T, x string, parts uint8) {
		files := []File{{"c.yaml", []byte(base)}, {"x.yaml", []byte(x)}}
		wantData, wantErr := load(files, 1, 0)
		gotData, gotErr := load(files, 2+int(parts%7), 1)
		if !reflect.DeepEqual(gotData, wantData) || !reflect.DeepEqual(gotErr, wantErr) {
			t.Errorf("chunked load differs:\n got  %v\n want %v", gotErr, wantErr)
		}
	})
}
