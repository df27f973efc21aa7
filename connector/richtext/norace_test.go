//go:build !race

package richtext

const raceEnabled = false
