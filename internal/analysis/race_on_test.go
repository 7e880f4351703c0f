//go:build race

package analysis

// raceEnabled thins the exactness tests' random trees under -race, which
// slows every decision several times over; without it they run in full.
const raceEnabled = true
