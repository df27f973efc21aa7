package sqlite

import (
	"context"
	"errors"
	"time"

	"github.com/connectord/connectord/connector"
)

// TEMPORARY: these are replaced by the real implementation in this session.
var errTODO = errors.New("connector/sqlite: not implemented yet")

func (s *Store) CountAttempt(ctx context.Context, id int64) (int, error) { return 1, nil }
func (s *Store) ClearAttempts(ctx context.Context, id int64) error     { return nil }
func (s *Store) Purge(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	return 0, errTODO
}
func (s *Store) OpenCounts(ctx context.Context, channel string) (map[connector.State]int, error) {
	return nil, errTODO
}
