// Command stage writes the directory `opa build -b` packs into tenantgate's
// bundle (see internal/bundle.Stage): the manifest, the non-test policies
// and the validated tenant data in JSON form. `make bundle` runs it.
//
//	go run ./internal/bundle/cmd/stage -data data -policies policies -revision REV -out DIR
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/tenantgate/tenantgate/internal/bundle"
)

func main() {
	var o bundle.StageOptions
	flag.StringVar(&o.Data, "data", "data", "tenant data directory")
	flag.StringVar(&o.Policies, "policies", "policies", "policies directory")
	flag.StringVar(&o.Out, "out", "", "staging directory (created, or empty)")
	flag.StringVar(&o.Revision, "revision", "", "bundle revision for the manifest")
	flag.Parse()
	if o.Out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := bundle.Stage(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
