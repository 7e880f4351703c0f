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

	more int // on the error that stands for errors left out: how many
}

func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.ID != "" {
		fmt.Fprintf(&b, "%s %q: ", e.Kind, cut(e.ID))
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "field %q: ", cut(e.Field))
	}
	b.WriteString(e.Msg)
	return b.String()
}

// cut shortens an id or a field name for a message. A valid one is at most
// 256 bytes and is printed whole; an invalid one can be as long as its file,
// and one entry can have many errors, each printing it.
func cut(s string) string {
	const max = 256
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}

// maxErrors is how many errors a file, and a load, lists at most; the rest
// are counted in one last error (see moreErrors). It bounds the memory and
// the text of a load's errors, however many a file would give.
const maxErrors = 1000

// moreErrors is the error that stands for n errors left out.
func moreErrors(file string, n int) *FieldError {
	return &FieldError{File: file, Msg: fmt.Sprintf("%d more errors not listed (at most %d are): fix the ones listed and load again", n, maxErrors), more: n}
}

// capErrors keeps the first maxErrors errors of a sorted list and puts last
// one error for all the others, those left out by each file included.
func capErrors(errs Errors) Errors {
	kept := make(Errors, 0, min(len(errs), maxErrors+1))
	more, file := 0, ""
	for _, e := range errs {
		switch {
		case e.more > 0:
			more += e.more
		case len(kept) == maxErrors:
			more++
		default:
			kept = append(kept, e)
			continue
		}
		if file == "" {
			file = e.File
		}
	}
	if more > 0 {
		kept = append(kept, moreErrors(file, more))
	}
	return kept
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
