// Package devtools is the home of tenantgate's development tooling: the
// programs that make targets run (loadbench for `make bench`, soak for
// `make soak`, tenantgen for the generated benchmark trees). None of it is
// part of the product: no package under cmd/ or the product's internal/
// packages may import anything below here (cmd/tenantgate's layout test
// checks it).
package devtools
