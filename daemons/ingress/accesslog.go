package ingress

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"
)

// AccessLog says where and how often requests are logged, one JSON line
// each: time, client, host, method, path, status, bytes, duration_ms,
// route, backend (and error when there was one).
type AccessLog struct {
	// SampleRate is the share of requests logged, 0 to 1. Requests that
	// end in a 5xx or an upstream error are always logged (0 logs only
	// those).
	SampleRate float64
	// Logger gets the lines at level Info; if nil, Writer gets them as
	// JSON; if both are nil there is no access log.
	Logger *slog.Logger
	Writer io.Writer
}

type accessLogger struct {
	rate float64
	log  *slog.Logger
}

func newAccessLogger(c AccessLog) *accessLogger {
	l := c.Logger
	if l == nil && c.Writer != nil {
		l = slog.New(slog.NewJSONHandler(c.Writer, nil))
	}
	if l == nil {
		return nil
	}
	return &accessLogger{rate: min(max(c.SampleRate, 0), 1), log: l}
}

// entry is what the access log says of one request.
type entry struct {
	start   time.Time
	client  string
	host    string
	method  string
	path    string
	status  int
	bytes   int64
	route   string
	backend string
	err     error
}

func (a *accessLogger) write(e *entry, d time.Duration) {
	if a == nil {
		return
	}
	failed := e.status >= 500 || e.err != nil
	if !failed && (a.rate <= 0 || (a.rate < 1 && rand.Float64() >= a.rate)) {
		return
	}
	attrs := []slog.Attr{
		slog.String("client", e.client),
		slog.String("host", e.host),
		slog.String("method", e.method),
		slog.String("path", e.path),
		slog.Int("status", e.status),
		slog.Int64("bytes", e.bytes),
		slog.Float64("duration_ms", float64(d.Microseconds())/1000),
		slog.String("route", e.route),
		slog.String("backend", e.backend),
	}
	if e.err != nil {
		attrs = append(attrs, slog.String("error", e.err.Error()))
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "access", attrs...)
}
