//go:build race

package roomtest_test

// raceEnabled reports whether the race detector is on (it slows the kit
// several times, so timing checks skip).
const raceEnabled = true
