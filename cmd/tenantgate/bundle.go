package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/tenantgate/tenantgate/internal/bundle"
	"github.com/tenantgate/tenantgate/internal/bundlebuild"
)

const bundleUsage = `Usage: tenantgate bundle <command> [flags]

Work with the signed OPA bundle that 'tenantgate serve --bundle' reads.

Commands:
  build   validate the tenant data and policies and pack them into a signed bundle

Run 'tenantgate bundle <command> -h' for a command's flags.
`

// bundleCmd runs `tenantgate bundle COMMAND`.
func bundleCmd(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, bundleUsage)
		return exitError{2}
	}
	switch args[0] {
	case "build":
		return bundleBuild(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stderr, bundleUsage)
		return exitError{0}
	default:
		fmt.Fprintf(stderr, "tenantgate bundle: unknown command %q\n\n%s", args[0], bundleUsage)
		return exitError{2}
	}
}

func bundleBuild(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bundle build", "Validate the tenant data (every error, with file and line), compile the policies, and\n"+
		"write them as the OPA bundle 'tenantgate serve --bundle' reads: the manifest (revision, roots),\n"+
		"the policies, the data, and with --signing-key a signature over every file. The output is\n"+
		"replaced by rename, so a server watching it reloads the whole new bundle.\n\n"+
		"The revision defaults to a hash of the content: \"sha256:\" and 16 hex digits over every\n"+
		"file of the bundle but its signature and the revision itself. The same data and policies\n"+
		"give the same revision; any change gives another.", stderr)
	var o bundlebuild.Options
	fs.StringVar(&o.Data, "data", "data", "directory of tenant data")
	fs.StringVar(&o.Policies, "policies", "policies", "directory of .rego policies (*_test.rego left out)")
	fs.StringVar(&o.Out, "o", "", "bundle file to write (.tar.gz); required")
	fs.StringVar(&o.Revision, "revision", "", "the manifest's revision (default: the content hash)")
	fs.StringVar(&o.SigningKey, "signing-key", "", "PEM private key to sign the bundle with (without it the bundle is unsigned,\n"+
		"and serve takes it only with --bundle-insecure-skip-verification)")
	alg := fs.String("signing-alg", bundle.DefaultAlgorithm, "signature algorithm: RS256, PS256, ES256, EdDSA, ... (as serve's --bundle-verification-alg)")
	if err := parse(fs, args); err != nil {
		return err
	}
	// Only an explicit --signing-alg reaches the build, so that one
	// without --signing-key is an error, not silently ignored.
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "signing-alg" {
			o.SigningAlg = *alg
		}
	})
	if o.Out == "" {
		fmt.Fprintln(stderr, "tenantgate bundle build: -o FILE is required (e.g. -o bundles/tenantgate.tar.gz)")
		return exitError{2}
	}
	r, err := bundlebuild.Build(context.Background(), o)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError{1}
	}
	sig := "signed " + *alg
	if !r.Signed {
		sig = "UNSIGNED (serve it only with --bundle-insecure-skip-verification)"
	}
	fmt.Fprintf(stdout, "%s: revision %s, %s, %d customers, %d users, %d data files, %d modules, %d bytes\n",
		o.Out, r.Revision, sig, r.Customers, r.Users, r.DataFiles, r.Modules, r.Bytes)
	return nil
}
