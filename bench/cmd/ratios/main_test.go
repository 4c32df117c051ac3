package main

import "testing"

func TestMetric(t *testing.T) {
	for _, c := range []struct {
		rest, unit string
		want       float64
		ok         bool
	}{
		{"\t 1.120 k-paired", "k-paired", 1.12, true},
		{"\t 5 B/op \t 1.5 k-paired \t 2 allocs/op", "k-paired", 1.5, true},
		{"\t 5 B/op", "k-paired", 0, false},
		{"\t x k-paired", "k-paired", 0, false},
		{"k-paired", "k-paired", 0, false},
	} {
		got, ok := metric(c.rest, c.unit)
		if got != c.want || ok != c.ok {
			t.Errorf("metric(%q) = %v, %v; want %v, %v", c.rest, got, ok, c.want, c.ok)
		}
	}
}
