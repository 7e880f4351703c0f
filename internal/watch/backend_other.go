//go:build !linux

package watch

import "log/slog"

// Elsewhere fsnotify is the backend: it reports no writer closing a file, so
// an in-place write is read once it has been quiet for the debounce interval.
func newBackend(log *slog.Logger) (backend, error) { return newPortable(log) }
