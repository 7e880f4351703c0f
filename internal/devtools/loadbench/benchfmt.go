package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// benchRow is one benchmark result line of `go test -bench` output.
type benchRow struct {
	name   string
	values map[string]float64 // unit -> value
}

// parseBench reads `go test -bench -benchmem` output. Result lines are
// "BenchmarkName-P  N  v1 unit1  v2 unit2 ..."; the package comes from the
// "pkg:" line before them. Other lines are ignored.
func parseBench(r io.Reader) ([]benchRow, []string, error) {
	var rows []benchRow
	var units []string
	seen := map[string]bool{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = p[strings.LastIndexByte(p, '/')+1:]
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // a benchmark's own log line, not a result
		}
		name := strings.TrimPrefix(f[0], "Benchmark")
		// Drop the -GOMAXPROCS suffix.
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		if pkg != "" {
			name = pkg + "." + name
		}
		row := benchRow{name: name, values: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, nil, fmt.Errorf("benchmark %s: bad value %q", name, f[i])
			}
			row.values[f[i+1]] = v
			if !seen[f[i+1]] {
				seen[f[i+1]] = true
				units = append(units, f[i+1])
			}
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read benchmark output: %w", err)
	}
	return rows, units, nil
}

// benchfmt prints `go test -bench` output as a markdown table, ns/op in a
// readable unit. A benchmark run several times (-count) gets the median of
// each of its figures.
func benchfmt(r io.Reader, w io.Writer) error {
	all, units, err := parseBench(r)
	if err != nil {
		return err
	}
	if len(all) == 0 {
		return fmt.Errorf("no benchmark results in the input")
	}
	rows := medians(all)
	var b strings.Builder
	b.WriteString("| benchmark |")
	sep := "|---|"
	for _, u := range units {
		if u == "ns/op" {
			u = "time/op"
		}
		b.WriteString(" " + u + " |")
		sep += "--:|"
	}
	b.WriteString("\n" + sep + "\n")
	for _, row := range rows {
		b.WriteString("| " + row.name + " |")
		for _, u := range units {
			v, ok := row.values[u]
			switch {
			case !ok:
				b.WriteString(" |")
			case u == "ns/op":
				b.WriteString(" " + humanDuration(v) + " |")
			case v == float64(int64(v)):
				b.WriteString(" " + thousands(v) + " |")
			default:
				b.WriteString(" " + sig3(v) + " |")
			}
		}
		b.WriteString("\n")
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// humanDuration prints nanoseconds with 3 significant digits in ns, µs, ms
// or s.
func humanDuration(ns float64) string {
	d := time.Duration(ns)
	switch {
	case d < time.Microsecond:
		return strconv.FormatFloat(ns, 'f', 0, 64) + " ns"
	case d < time.Millisecond:
		return sig3(ns/1e3) + " µs"
	case d < time.Second:
		return sig3(ns/1e6) + " ms"
	default:
		return sig3(ns/1e9) + " s"
	}
}

// sig3 prints x with about 3 significant digits, never in e-notation.
func sig3(x float64) string {
	switch {
	case x >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	default:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
}

// medians merges the rows of one benchmark, in first-seen order, keeping
// the median of each figure.
func medians(rows []benchRow) []benchRow {
	var order []string
	samples := map[string]map[string][]float64{}
	for _, r := range rows {
		if samples[r.name] == nil {
			samples[r.name] = map[string][]float64{}
			order = append(order, r.name)
		}
		for u, v := range r.values {
			samples[r.name][u] = append(samples[r.name][u], v)
		}
	}
	out := make([]benchRow, len(order))
	for i, name := range order {
		out[i] = benchRow{name: name, values: map[string]float64{}}
		for u, vs := range samples[name] {
			out[i].values[u] = median(vs)
		}
	}
	return out
}
