package main

import "runtime/debug"

// buildGCPercent is the GOGC in force while a snapshot is built.
const buildGCPercent = 25

// buildGC tunes the collector around a snapshot build. A build allocates
// several times what it keeps (the YAML node trees: ~480 MB allocated for
// ~44 MB kept at 200,000 users), beside the snapshot still serving:
// collecting more often meanwhile keeps the peak RSS near what is kept, for
// a little more CPU during the build. After a published build the garbage
// goes back to the OS at once rather than when the scavenger gets to it: the
// RSS would otherwise stay near the build's peak (at 200,000 users: 194 MiB
// after start-up instead of 79 MiB), and the next reload's peak would come
// on top of it. One full collection per reload, on the reloading goroutine;
// requests keep being served.
func buildGC() (done func(published bool)) {
	old := debug.SetGCPercent(buildGCPercent)
	return func(published bool) {
		debug.SetGCPercent(old)
		if published {
			debug.FreeOSMemory()
		}
	}
}
