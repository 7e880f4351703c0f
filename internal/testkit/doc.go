// Package testkit is the home of helpers that only tests import: testdir
// (a private copy of the demo tree), syncbuf (a locked buffer for captured
// logs) and tlstest (throwaway CAs and certificates). The product never
// imports it (cmd/tenantgate's layout test checks it).
package testkit
