package connector

import (
	"runtime"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// LightWith's lines carry its fields, and those of a With on top of it,
// and its wrapped core's level and sampling still decide what is written.
func TestLightWithFields(t *testing.T) {
	obs, logs := observer.New(zapcore.InfoLevel)
	sampled := zapcore.NewSamplerWithOptions(obs, time.Hour, 2, 0)
	log := LightWith(zap.New(sampled), zap.Int64("conversation", 7)).With(zap.String("chat", "u1"))
	log.Debug("below the level")
	for range 3 {
		log.Info("sampled", zap.Int("n", 1))
	}
	all := logs.All()
	if len(all) != 2 {
		t.Fatalf("%d lines written, want 2 (debug is off, the third is sampled away)", len(all))
	}
	got := all[0].ContextMap()
	if got["conversation"] != int64(7) || got["chat"] != "u1" || got["n"] != int64(1) || len(got) != 3 {
		t.Errorf("fields %v, want conversation, chat and n", got)
	}
}

// A logger kept per conversation holds a small fraction of what With keeps.
func TestLightWithHoldsLittle(t *testing.T) {
	base := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()),
		zapcore.AddSync(discard{}), zapcore.InfoLevel))
	const n = 2000
	per := func(build func(i int) *zap.Logger) float64 {
		keep := make([]*zap.Logger, 0, n)
		before := liveHeap()
		for i := range n {
			keep = append(keep, build(i))
		}
		after := liveHeap()
		runtime.KeepAlive(keep)
		return float64(after-before) / n
	}
	with := per(func(i int) *zap.Logger { return base.With(zap.Int("conversation", i)) })
	light := per(func(i int) *zap.Logger { return LightWith(base, zap.Int("conversation", i)) })
	t.Logf("bytes per logger: With %.0f, LightWith %.0f", with, light)
	if light > with/3 {
		t.Errorf("LightWith keeps %.0f bytes per logger, With %.0f: want at most a third", light, with)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
