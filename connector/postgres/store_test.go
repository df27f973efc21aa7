package postgres

import (
	"testing"

	"github.com/connectord/connectord/connector"
	"github.com/connectord/connectord/connector/connectortest"
)

func TestConformance(t *testing.T) {
	connectortest.TestStore(t, func(t *testing.T) connector.Store { return open(t, freshDSN(t)) })
}
