package main

import (
	"fmt"
	"io"
	"time"

	"github.com/tenantgate/tenantgate/internal/identity"
	"github.com/tenantgate/tenantgate/internal/tenant"
)

func token(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token", "Mint an HS256 development token for a user, signed with the secret file. For demos and\n"+
		"tests only: production tokens come from your identity provider.", stderr)
	var idf identityFlags
	fs.StringVar(&idf.secretFile, "jwt-hs256-secret-file", "", "file holding the HS256 secret the server verifies with")
	fs.StringVar(&idf.issuer, "jwt-issuer", "", "iss claim to set (match the server's --jwt-issuer)")
	fs.StringVar(&idf.audience, "jwt-audience", "", "aud claim to set (match the server's --jwt-audience)")
	user := fs.String("user", "", "user id to put in the sub claim")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime (exp = now + ttl)")
	data := fs.String("data", "data", "directory of tenant data, to warn when --user is not in it (empty: no check)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *user == "" || idf.secretFile == "" {
		fmt.Fprintln(stderr, "token needs --user and --jwt-hs256-secret-file")
		return exitError{2}
	}
	tok, err := identity.SignHS256(idf.secretFile, *user, idf.issuer, idf.audience, *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	// The token is minted anyway (a test may want an unknown user's), but a
	// typo in --user would otherwise show only later, as unknown_user.
	if *data != "" {
		if d, err := tenant.LoadDir(*data); err != nil {
			fmt.Fprintf(stderr, "warning: cannot check --user against --data %s: %v\n", *data, err)
		} else if d.Users[*user] == nil {
			fmt.Fprintf(stderr, "warning: %s is not a user in %s: tenantgate will deny this token with unknown_user\n", *user, *data)
		}
	}
	return nil
}
