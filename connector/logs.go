package connector

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Log sampling: of the lines with the same level and message, the first
// logSampleFirst in each second are written and then one in every
// logSampleThereafter. A vendor that sends a malformed frame in a loop, or a
// socket that drops as soon as it is open, would otherwise write thousands of
// identical lines a second; connectord_log_lines_dropped_total counts what
// was left out.
const (
	logSampleFirst      = 10
	logSampleThereafter = 100
)

// observeLogs returns log with every URL in its message and string or error
// fields redacted (RedactText) and repeated lines sampled, counting dropped
// lines in m.
func observeLogs(log *zap.Logger, m *Metrics) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		hook := zapcore.SamplerHook(func(e zapcore.Entry, d zapcore.SamplingDecision) {
			if d&zapcore.LogDropped != 0 {
				m.LogDropped.WithLabelValues(e.Level.String()).Inc()
			}
		})
		return zapcore.NewSamplerWithOptions(redactingCore{c}, time.Second, logSampleFirst, logSampleThereafter, hook)
	}))
}

// redactingCore rewrites entries so that no URL userinfo or query string
// reaches the log: Go's network errors quote the URL they failed on, and a
// vendor URL may carry a token.
type redactingCore struct{ zapcore.Core }

func (c redactingCore) With(fs []zapcore.Field) zapcore.Core {
	return redactingCore{c.Core.With(redactFields(fs))}
}

func (c redactingCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c redactingCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	e.Message = RedactText(e.Message)
	return c.Core.Write(e, redactFields(fs))
}

func redactFields(fs []zapcore.Field) []zapcore.Field {
	out := fs
	copied := false
	for i, f := range fs {
		var nf zapcore.Field
		switch {
		case f.Type == zapcore.StringType:
			if r := RedactText(f.String); r != f.String {
				nf = zap.String(f.Key, r)
			} else {
				continue
			}
		case f.Type == zapcore.ErrorType:
			err, _ := f.Interface.(error)
			if err == nil {
				continue
			}
			nf = zap.String(f.Key, RedactError(err))
		default:
			continue
		}
		if !copied {
			out = append([]zapcore.Field(nil), fs...)
			copied = true
		}
		out[i] = nf
	}
	return out
}

func newLogDropped() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "connectord_log_lines_dropped_total",
		Help: "Log lines left out by sampling (repeats of one message beyond 10 a second), by level."}, []string{"level"})
}

// LightWith returns log with fields added to every line it writes. Unlike
// log.With it encodes them with each line instead of once ahead: With keeps
// an encoded copy, about 1 KiB with its buffer, for the logger's whole
// life, which a logger kept per idle conversation multiplies by every
// conversation. Lines are as With would write them; use it for loggers kept
// per conversation, which write rarely.
func LightWith(log *zap.Logger, fields ...zap.Field) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return fieldsCore{Core: c, fields: fields}
	}))
}

// fieldsCore adds fields to each entry it writes (LightWith).
type fieldsCore struct {
	zapcore.Core
	fields []zapcore.Field
}

func (c fieldsCore) With(fs []zapcore.Field) zapcore.Core {
	return fieldsCore{Core: c.Core, fields: append(c.fields[:len(c.fields):len(c.fields)], fs...)}
}

// Check asks the wrapped core, so that its level and sampling decide, and
// then has the entry written through c, which adds the fields.
func (c fieldsCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Core.Check(e, nil) == nil {
		return ce
	}
	return ce.AddCore(e, c)
}

func (c fieldsCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	all := make([]zapcore.Field, 0, len(c.fields)+len(fs))
	return c.Core.Write(e, append(append(all, c.fields...), fs...))
}
