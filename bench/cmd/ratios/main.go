// Command ratios reads `go test -bench` output (several runs, from one or
// more test binaries) on stdin and prints, for every benchmark named
// Benchmark<Op>/<impl> with impl one of ours, gmsl, mautrix or raw (the
// bare crypto floor), the median
// ns/op of each implementation and its ratio to ours (how many times slower
// than ours it is). For operations named <Prefix>N<size> at several sizes
// it also prints how each implementation's median grows between
// consecutive sizes, as the exponent k of size^k. Benchmarks that report a
// k-paired metric (growth measured in paired rounds, see
// BenchmarkStateResolveGrowth) are listed apart, with the median of that
// metric over the runs.
package main

import (
	"bufio"
	"cmp"
	"fmt"
	"math"
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
	peaks := map[string]map[string][]float64{}
	cpus := map[string]map[string][]float64{}
	var ops []string
	paired := map[string]map[string][]float64{}
	var pairedOps []string
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
		if k, ok := metric(m[4], "k-paired"); ok {
			if paired[op] == nil {
				paired[op] = map[string][]float64{}
				pairedOps = append(pairedOps, op)
			}
			paired[op][impl] = append(paired[op][impl], k)
			continue
		}
		if samples[op] == nil {
			samples[op] = map[string][]float64{}
			allocs[op] = map[string]string{}
			peaks[op] = map[string][]float64{}
			cpus[op] = map[string][]float64{}
			ops = append(ops, op)
		}
		samples[op][impl] = append(samples[op][impl], ns)
		if mb, ok := metric(m[4], "peak-MB"); ok {
			peaks[op][impl] = append(peaks[op][impl], mb)
		}
		if ms, ok := metric(m[4], "cpu-ms/op"); ok {
			cpus[op][impl] = append(cpus[op][impl], ms)
		}
		if f := strings.Fields(m[4]); len(f) >= 2 {
			for i := 0; i+1 < len(f); i++ {
				if f[i+1] == "allocs/op" {
					allocs[op][impl] = f[i]
				}
			}
		}
	}
	sort.Strings(ops)
	fmt.Printf("%-34s %-8s %14s %8s %10s %8s %s\n", "operation", "impl", "median ns/op", "runs", "allocs/op", "peak-MB", "ratio to ours")
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
			peak := "-"
			if p := peaks[op][impl]; len(p) > 0 {
				peak = fmt.Sprintf("%.1f", median(p))
			}
			fmt.Printf("%-34s %-8s %14.0f %8d %10s %8s %s\n", op, impl, med, len(s), allocs[op][impl], peak, ratio)
		}
	}
	printCPU(ops, cpus)
	printGrowth(ops, samples)
	if len(pairedOps) > 0 {
		fmt.Printf("\nGrowth measured in paired rounds (median k over the runs):\n")
		for _, op := range pairedOps {
			for _, impl := range []string{"ours", "gmsl", "mautrix"} {
				if ks := paired[op][impl]; len(ks) > 0 {
					fmt.Printf("%-34s %-8s k = %.3f (runs: %s)\n", op, impl, median(ks), formatAll(ks))
				}
			}
		}
	}
}

// metric returns the value of the custom metric unit in the fields after
// ns/op of a benchmark line.
func metric(rest, unit string) (float64, bool) {
	f := strings.Fields(rest)
	for i := 0; i+1 < len(f); i++ {
		if f[i+1] == unit {
			v, err := strconv.ParseFloat(f[i], 64)
			return v, err == nil
		}
	}
	return 0, false
}

func formatAll(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 3, 64)
	}
	return strings.Join(parts, " ")
}

var sized = regexp.MustCompile(`^(.+)N(\d+)$`)

// printGrowth prints, for each operation measured at several sizes, the
// growth of each implementation's median from one size to the next.
func printGrowth(ops []string, samples map[string]map[string][]float64) {
	type point struct {
		n  float64
		op string
	}
	series := map[string][]point{}
	var prefixes []string
	for _, op := range ops {
		m := sized.FindStringSubmatch(op)
		if m == nil {
			continue
		}
		n, err := strconv.ParseFloat(m[2], 64)
		if err != nil || n <= 0 {
			continue
		}
		if series[m[1]] == nil {
			prefixes = append(prefixes, m[1])
		}
		series[m[1]] = append(series[m[1]], point{n, op})
	}
	header := false
	for _, prefix := range prefixes {
		pts := series[prefix]
		slices.SortFunc(pts, func(a, b point) int { return cmp.Compare(a.n, b.n) })
		for i := 1; i < len(pts); i++ {
			a, b := pts[i-1], pts[i]
			for _, impl := range []string{"ours", "gmsl", "mautrix"} {
				ta, tb := median(samples[a.op][impl]), median(samples[b.op][impl])
				if ta <= 0 || tb <= 0 {
					continue
				}
				if !header {
					fmt.Printf("\nGrowth of the median between sizes (time ratio = size ratio^k):\n")
					header = true
				}
				k := math.Log(tb/ta) / math.Log(b.n/a.n)
				fmt.Printf("%-34s %-8s %.4gx for %gx the size: k = %.2f\n", a.op+" -> N"+strconv.FormatFloat(b.n, 'f', -1, 64), impl, tb/ta, b.n/a.n, k)
			}
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

// printCPU prints, for the benchmarks that report cpu-ms/op (the process's
// CPU time per operation), its median per implementation and the ratio to
// ours: on a shared machine it is steadier than the wall time.
func printCPU(ops []string, cpus map[string]map[string][]float64) {
	header := false
	for _, op := range ops {
		ours := median(cpus[op]["ours"])
		for _, impl := range []string{"ours", "gmsl", "mautrix"} {
			c := cpus[op][impl]
			if len(c) == 0 {
				continue
			}
			if !header {
				fmt.Printf("\nCPU time per operation (median cpu-ms/op, ratio to ours):\n")
				header = true
			}
			ratio := "-"
			if ours > 0 {
				ratio = fmt.Sprintf("%.2fx", median(c)/ours)
			}
			fmt.Printf("%-34s %-8s %10.2f ms %s\n", op, impl, median(c), ratio)
		}
	}
}
