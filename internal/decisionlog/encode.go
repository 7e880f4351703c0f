package decisionlog

import (
	"math/rand/v2"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tenantgate/tenantgate/internal/engine"
)

const (
	// maxPath bounds the logged path: a request may carry a far longer one
	// (it is denied as bad_path), and one request must not write megabytes.
	maxPath = 8192
	// maxMethod bounds the logged method, which gRPC does not bound.
	maxMethod = 64
)

// appendEntry appends one decision as a JSON line. The fields are fixed, so
// it is written by hand: no reflection, no allocation.
//
// On a dry-run deny, result, status and reason are the policy's deny and
// dry_run is true: the request was let through.
func appendEntry(b []byte, now time.Time, id [16]byte, req *engine.Request, res *engine.Result, elapsed time.Duration) []byte {
	d := &res.Decision
	if res.DryRun {
		d = &res.Denied
	}
	b = append(b, `{"time":"`...)
	b = now.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","decision_id":"`...)
	b = appendUUID(b, id)
	b = append(b, `","user":`...)
	b = appendString(b, res.User)
	b = append(b, `,"method":`...)
	b = appendString(b, truncate(req.Method, maxMethod))
	b = append(b, `,"path":`...)
	b = appendString(b, truncate(req.Path, maxPath))
	if len(req.Path) > maxPath {
		b = append(b, `,"path_truncated":true`...)
	}
	b = append(b, `,"customer":`...)
	b = appendString(b, res.Customer)
	if d.Allowed {
		b = append(b, `,"result":"allow","status":`...)
	} else {
		b = append(b, `,"result":"deny","status":`...)
	}
	b = strconv.AppendInt(b, int64(d.Status), 10)
	b = append(b, `,"reason":`...)
	b = appendString(b, d.Reason)
	b = append(b, `,"dry_run":`...)
	b = strconv.AppendBool(b, res.DryRun)
	b = append(b, `,"latency_us":`...)
	b = strconv.AppendInt(b, elapsed.Microseconds(), 10)
	b = append(b, `,"revision":`...)
	b = appendString(b, res.Revision)
	return append(b, "}\n"...)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// newID returns a random version 4 UUID. The ids must be unique, not secret,
// so they come from math/rand/v2's global generator: the runtime's ChaCha8,
// seeded from the OS, per thread, with no lock and no system call.
func newID() [16]byte {
	var id [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		id[i] = byte(hi >> (56 - 8*i))
		id[8+i] = byte(lo >> (56 - 8*i))
	}
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return id
}

const hexDigits = "0123456789abcdef"

func appendUUID(b []byte, id [16]byte) []byte {
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0x0f])
	}
	return b
}

// appendString appends s as a JSON string exactly as encoding/json does with
// HTML escaping off: \" \\ \b \f \n \r \t, other control bytes as \u00XX,
// U+2028 and U+2029 escaped, and each byte of invalid UTF-8 as \ufffd (a
// client controls the path: the line must stay valid JSON whatever it sent).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0x0f])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
