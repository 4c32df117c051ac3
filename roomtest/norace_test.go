//go:build !race

package roomtest_test

const raceEnabled = false
