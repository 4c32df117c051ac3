// Command ratios reads `go test -bench` output (several runs, from one or
// more test binaries) on stdin and prints, for every benchmark named
// Benchmark<Op>/<impl> with impl one of ours, gmsl, mautrix or raw (the
// bare crypto floor), the median
// ns/op of each implementation and its ratio to ours (how many times slower
// than ours it is).
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

var line = regexp.MustCompile(`^Benchmark(\S+?)/(ours|gmsl|mautrix|raw)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(.*)$`)

func main() {
	samples := map[string]map[string][]float64{}
	allocs := map[string]map[string]string{}
	var ops []string
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		m := line.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		op, impl := m[1], m[2]
		ns, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		if samples[op] == nil {
			samples[op] = map[string][]float64{}
			allocs[op] = map[string]string{}
			ops = append(ops, op)
		}
		samples[op][impl] = append(samples[op][impl], ns)
		if f := strings.Fields(m[4]); len(f) >= 2 {
			for i := 0; i+1 < len(f); i++ {
				if f[i+1] == "allocs/op" {
					allocs[op][impl] = f[i]
				}
			}
		}
	}
	sort.Strings(ops)
	fmt.Printf("%-34s %-8s %14s %8s %10s %s\n", "operation", "impl", "median ns/op", "runs", "allocs/op", "ratio to ours")
	for _, op := range ops {
		ours := median(samples[op]["ours"])
		for _, impl := range []string{"ours", "gmsl", "mautrix", "raw"} {
			s := samples[op][impl]
			if len(s) == 0 {
				continue
			}
			med := median(s)
			ratio := "-"
			if ours > 0 {
				ratio = fmt.Sprintf("%.2fx", med/ours)
			}
			fmt.Printf("%-34s %-8s %14.0f %8d %10s %s\n", op, impl, med, len(s), allocs[op][impl], ratio)
		}
	}
}

func median(s []float64) float64 {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}
