package tenant

import (
	"fmt"
	"strings"
)

// FieldError is one validation or syntax error. It names the file, the line
// where the parser gives one, the id and the field it concerns.
type FieldError struct {
	File  string
	Line  int    // 0 when unknown
	Kind  string // "customer", "user" or "" for file-level errors
	ID    string
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.ID != "" {
		fmt.Fprintf(&b, "%s %q: ", e.Kind, e.ID)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q: ", e.Field)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every error of one load, in file and line order.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}
