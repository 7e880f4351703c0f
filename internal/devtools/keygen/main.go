// Command keygen makes the development bundle signing key pair for
// `make bundle`, if it is missing: an RSA private key (PKCS#8 PEM, mode 0600)
// and its public key (PKIX PEM). An existing private key is never replaced.
//
// It is development tooling, not a tenantgate command: a production signing
// key comes from the operator's PKI or KMS and stays in CI (`openssl genpkey
// -algorithm RSA -pkeyopt rsa_keygen_bits:2048` makes one by hand).
//
//	go run ./internal/devtools/keygen -private .dev/bundle-signing.pem -public .dev/bundle-verification.pem
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	private := flag.String("private", "", "private key file (PEM), made if missing")
	public := flag.String("public", "", "public key file (PEM), written from the private key")
	flag.Parse()
	if *private == "" || *public == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	madeKey, wrotePublic, err := EnsureKeyPair(*private, *public)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	switch {
	case madeKey:
		fmt.Printf("made a development bundle signing key: %s (public key: %s)\n", *private, *public)
	case wrotePublic:
		fmt.Printf("wrote the public key of %s to %s\n", *private, *public)
	}
}
