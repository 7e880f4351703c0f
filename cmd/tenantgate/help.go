package main

import (
	"fmt"
	"io"

	"github.com/tenantgate/tenantgate/internal/docs"
)

// help prints the usage and the topic list, or one topic, as `go help`
// does. The topics are embedded, so they travel with the binary.
func help(args []string, stdout, stderr io.Writer) error {
	switch len(args) {
	case 0:
		fmt.Fprint(stdout, usage)
		fmt.Fprint(stdout, "\nReference topics ('tenantgate help TOPIC'):\n")
		for _, t := range docs.Topics {
			fmt.Fprintf(stdout, "  %-13s %s\n", t.Name, t.Summary)
		}
		return nil
	case 1:
		if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
			return help(nil, stdout, stderr)
		}
		if text, ok := docs.Text(args[0]); ok {
			fmt.Fprint(stdout, text)
			return nil
		}
		names := make([]string, 0, len(docs.Topics))
		for _, t := range docs.Topics {
			names = append(names, t.Name)
		}
		fmt.Fprintf(stderr, "tenantgate help: no topic %q", args[0])
		if s := closest(args[0], names); s != "" {
			fmt.Fprintf(stderr, "; did you mean %q?", s)
		}
		fmt.Fprintf(stderr, "\nrun 'tenantgate help' for the list of topics\n")
		return exitError{2}
	default:
		fmt.Fprintln(stderr, "usage: tenantgate help [TOPIC]")
		return exitError{2}
	}
}
