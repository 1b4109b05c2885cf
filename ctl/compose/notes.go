package compose

import (
	"io"
	"slices"
	"sync"

	"github.com/sirupsen/logrus"
)

// loaderLog collects what compose-go logs (through logrus's standard
// logger, which it writes to stderr otherwise) while a stack loads, so
// that warrenctl prints it as its own warnings, once each.
type loaderLog struct {
	mu       sync.Mutex
	msgs     []string
	oldOut   io.Writer
	oldHooks logrus.LevelHooks
}

func captureLoaderLog() *loaderLog {
	l := &loaderLog{}
	std := logrus.StandardLogger()
	l.oldOut = std.Out
	std.SetOutput(io.Discard)
	hooks := logrus.LevelHooks{}
	hooks.Add(l)
	l.oldHooks = std.ReplaceHooks(hooks)
	return l
}

func (l *loaderLog) stop() {
	std := logrus.StandardLogger()
	std.ReplaceHooks(l.oldHooks)
	std.SetOutput(l.oldOut)
}

func (l *loaderLog) Levels() []logrus.Level {
	return []logrus.Level{logrus.PanicLevel, logrus.FatalLevel, logrus.ErrorLevel, logrus.WarnLevel}
}

func (l *loaderLog) Fire(e *logrus.Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Contains(l.msgs, e.Message) {
		l.msgs = append(l.msgs, e.Message)
	}
	return nil
}

func (l *loaderLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.msgs)
}
