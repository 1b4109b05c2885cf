package core

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
)

// HCLog is an hclog.Logger that writes through a slog.Logger, so that
// Raft's own lines come out in the daemon's one log format. Lines below
// level are dropped (Raft is chatty at info).
func HCLog(l *slog.Logger, level hclog.Level) hclog.Logger {
	h := &hcSlog{l: l}
	h.level.Store(int32(level))
	return h
}

type hcSlog struct {
	l     *slog.Logger
	name  string
	args  []any
	level atomic.Int32
}

var hcLevels = map[hclog.Level]slog.Level{
	hclog.Trace: slog.LevelDebug - 4, hclog.Debug: slog.LevelDebug, hclog.Info: slog.LevelInfo,
	hclog.Warn: slog.LevelWarn, hclog.Error: slog.LevelError,
}

func (h *hcSlog) enabled(level hclog.Level) bool {
	return level != hclog.Off && level >= hclog.Level(h.level.Load())
}

func (h *hcSlog) Log(level hclog.Level, msg string, args ...any) {
	if !h.enabled(level) {
		return
	}
	sl, ok := hcLevels[level]
	if !ok {
		sl = slog.LevelInfo
	}
	all := make([]any, 0, len(h.args)+len(args)+2)
	if h.name != "" {
		all = append(all, "logger", h.name)
	}
	all = append(append(all, h.args...), args...)
	h.l.Log(context.Background(), sl, msg, all...)
}

func (h *hcSlog) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hcSlog) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hcSlog) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hcSlog) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hcSlog) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }
func (h *hcSlog) IsTrace() bool                 { return h.enabled(hclog.Trace) }
func (h *hcSlog) IsDebug() bool                 { return h.enabled(hclog.Debug) }
func (h *hcSlog) IsInfo() bool                  { return h.enabled(hclog.Info) }
func (h *hcSlog) IsWarn() bool                  { return h.enabled(hclog.Warn) }
func (h *hcSlog) IsError() bool                 { return h.enabled(hclog.Error) }
func (h *hcSlog) ImpliedArgs() []any            { return h.args }
func (h *hcSlog) Name() string                  { return h.name }
func (h *hcSlog) SetLevel(level hclog.Level)    { h.level.Store(int32(level)) }
func (h *hcSlog) GetLevel() hclog.Level         { return hclog.Level(h.level.Load()) }

func (h *hcSlog) sub(name string, args []any) *hcSlog {
	c := &hcSlog{l: h.l, name: name, args: args}
	c.level.Store(h.level.Load())
	return c
}

func (h *hcSlog) With(args ...any) hclog.Logger {
	return h.sub(h.name, append(append([]any(nil), h.args...), args...))
}

func (h *hcSlog) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.sub(name, h.args)
}

func (h *hcSlog) ResetNamed(name string) hclog.Logger { return h.sub(name, h.args) }

func (h *hcSlog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(h.StandardWriter(opts), "", 0)
}

func (h *hcSlog) StandardWriter(*hclog.StandardLoggerOptions) io.Writer { return stdWriter{h} }

// stdWriter takes lines of the standard library's logger ("[WARN] ...",
// as Raft's dependencies write them) into the slog handler.
type stdWriter struct{ h *hcSlog }

func (w stdWriter) Write(b []byte) (int, error) {
	msg := strings.TrimSpace(string(b))
	level := hclog.Info
	for _, p := range []struct {
		prefix string
		level  hclog.Level
	}{{"[TRACE]", hclog.Trace}, {"[DEBUG]", hclog.Debug}, {"[INFO]", hclog.Info}, {"[WARN]", hclog.Warn}, {"[ERR]", hclog.Error}, {"[ERROR]", hclog.Error}} {
		if rest, ok := strings.CutPrefix(msg, p.prefix); ok {
			msg, level = strings.TrimSpace(rest), p.level
			break
		}
	}
	w.h.Log(level, msg)
	return len(b), nil
}
