package distribution

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/open-policy-agent/opa/v1/logging"
)

// opaLogger hands OPA's plugins (download, rest, status, logs) tenantgate's
// slog logger, so their lines come out in the format and at the level the
// operator chose.
type opaLogger struct {
	log   *slog.Logger
	level logging.Level
}

func newOPALogger(log *slog.Logger) *opaLogger {
	l := &opaLogger{log: log, level: logging.Info}
	ctx := context.Background()
	switch {
	case log.Enabled(ctx, slog.LevelDebug):
		l.level = logging.Debug
	case log.Enabled(ctx, slog.LevelInfo):
		l.level = logging.Info
	case log.Enabled(ctx, slog.LevelWarn):
		l.level = logging.Warn
	default:
		l.level = logging.Error
	}
	return l
}

func (l *opaLogger) Debug(f string, a ...any) { l.log.Debug(fmt.Sprintf(f, a...)) }
func (l *opaLogger) Info(f string, a ...any)  { l.log.Info(fmt.Sprintf(f, a...)) }
func (l *opaLogger) Warn(f string, a ...any)  { l.log.Warn(fmt.Sprintf(f, a...)) }
func (l *opaLogger) Error(f string, a ...any) { l.log.Error(fmt.Sprintf(f, a...)) }

func (l *opaLogger) WithFields(fields map[string]any) logging.Logger {
	args := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		args = append(args, k, v)
	}
	return &opaLogger{log: l.log.With(args...), level: l.level}
}

func (l *opaLogger) GetLevel() logging.Level   { return l.level }
func (l *opaLogger) SetLevel(lv logging.Level) { l.level = lv }
