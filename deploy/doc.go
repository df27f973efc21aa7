// Package deploy holds no code: its tests check the Grafana dashboard and the
// Prometheus alert rules kept in this directory, with promtool and against
// the metrics a running connectord really exports.
package deploy
