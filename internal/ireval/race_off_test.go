//go:build !race

package ireval

const raceEnabled = false
