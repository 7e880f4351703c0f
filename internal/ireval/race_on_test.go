//go:build race

package ireval

// raceEnabled thins the largest differential corpora under -race, which
// slows OPA's evaluator about tenfold; the full corpora run without it.
const raceEnabled = true
