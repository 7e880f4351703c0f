package decisionlog

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzAppendString holds appendString to encoding/json's output, byte for
// byte, for any input: the line is always valid JSON.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "\x00\x01\x1f\x7f", "\b\f\n\r\t",
		"caf\u00e9 \u2028 \u2029 \U0001F600", "\xff\xfe bad \xc3", "\xe2\x80", "/api?x=<a>&y='z'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		got := appendString(nil, s)
		if !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Fatalf("appendString(%q) = %s, encoding/json says %s", s, got, want.Bytes())
		}
	})
}

func TestNewIDIsUUIDv4(t *testing.T) {
	seen := map[[16]byte]bool{}
	for range 1000 {
		id := newID()
		if id[6]>>4 != 4 || id[8]>>6 != 2 {
			t.Fatalf("%x: not a version 4, RFC 9562 variant UUID", id)
		}
		if seen[id] {
			t.Fatalf("%x repeated", id)
		}
		seen[id] = true
	}
	if got := string(appendUUID(nil, [16]byte{0: 0x01, 15: 0xff})); got != "01000000-0000-0000-0000-0000000000ff" {
		t.Fatalf("appendUUID: %s", got)
	}
}
