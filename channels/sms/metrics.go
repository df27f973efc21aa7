package sms

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/connectord/connectord/channels/sms/segment"
)

// metrics are the channel's own series, registered on ChannelEnv.Metrics,
// which labels each with adapter="sms.NAME".
type metrics struct {
	// segments counts the segments of every body Twilio accepted, by
	// encoding ("GSM-7", "UCS-2"): what the carrier bills.
	segments *prometheus.CounterVec
}

// newMetrics registers the channel's series on reg (a private registry when
// reg is nil, as without the core). A series already registered, by an
// earlier build of the same channel (a reload), is reused.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	segs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "connectord_sms_segments_total",
		Help: "SMS segments of the message bodies Twilio accepted, by encoding (GSM-7 or UCS-2).",
	}, []string{"encoding"})
	if err := reg.Register(segs); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return nil, err
		}
		existing, ok := are.ExistingCollector.(*prometheus.CounterVec)
		if !ok {
			return nil, err
		}
		segs = existing
	}
	return &metrics{segments: segs}, nil
}

// countSent adds one accepted body to the segment counter.
func (m *metrics) countSent(body string) {
	info := segment.Count(body)
	m.segments.WithLabelValues(info.Encoding.String()).Add(float64(info.Segments))
}
