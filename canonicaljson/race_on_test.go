//go:build race

package canonicaljson

const raceEnabled = true
