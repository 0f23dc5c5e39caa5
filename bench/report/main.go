// Command report prints gotrain's benchmark table: it reads the output of
// `go test -bench` (gotrain's and ONNX Runtime's samples/s) and the JSON
// lines of torch_bench.py (PyTorch's, one line per configuration tried),
// keeps the best figure per workload (of PyTorch's configurations, and of
// the rounds of each when scripts/bench.sh runs several), and prints each
// workload with the ratios gotrain/PyTorch and gotrain/ONNX Runtime.
//
//	go run ./bench/report go-bench.txt torch.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

type torchLine struct {
	Name    string            `json:"name"`
	Samples float64           `json:"samples_per_sec"`
	Threads int               `json:"threads"`
	Env     map[string]string `json:"env"`
}

// rows maps our benchmark names to the reference workloads.
var rows = []struct {
	label, ours, torch, ort string
}{
	{"CNN inference, batch 256", "Infer/cnn/256", "infer/cnn/256", "ORTInfer/cnn/256"},
	{"MLP inference, batch 256", "Infer/mlp/256", "infer/mlp/256", "ORTInfer/mlp/256"},
	{"CNN training (Adam), batch 32", "Train/cnn/32", "train/cnn/32", ""},
	{"CNN training (Adam), batch 64", "Train/cnn/64", "train/cnn/64", ""},
	{"MLP training (Adam), batch 64", "Train/mlp/64", "train/mlp/64", ""},
	{"CNN training, mirrored 2 replicas vs PyTorch DDP 2 procs (gloo), batch 32", "TrainMirrored2/cnn/32", "ddp2/cnn/32", ""},
	{"Augmentation 28x28x1, images/s on one core", "Augment28x28x1", "", ""},
	{"Augmentation 32x32x3, images/s on one core", "Augment32x32x3", "", ""},
}

var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+\d+\s+.*?([\d.]+) (samples/s|images/s)`)
var memRe = regexp.MustCompile(`([\d.]+) MB-sys`)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: report GO_BENCH_OUTPUT TORCH_JSONL")
		os.Exit(2)
	}
	ours, mem, err := readGo(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	torch, err := readTorch(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	fmt.Println("| workload | gotrain | PyTorch (best config) | gotrain / PyTorch | ONNX Runtime | gotrain / ORT | gotrain peak MB |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, r := range rows {
		g, ok := ours[r.ours]
		if !ok {
			continue
		}
		tcol, tratio := "-", "-"
		if t, ok := torch[r.torch]; ok {
			tcol = fmt.Sprintf("%.0f (%s)", t.Samples, config(t))
			tratio = fmt.Sprintf("%.2fx", g/t.Samples)
		}
		ocol, oratio := "-", "-"
		if o, ok := ours[r.ort]; ok {
			ocol = fmt.Sprintf("%.0f", o)
			oratio = fmt.Sprintf("%.2fx", g/o)
		}
		m := "-"
		if v, ok := mem[r.ours]; ok {
			m = fmt.Sprintf("%.0f", v)
		}
		fmt.Printf("| %s | %.0f | %s | %s | %s | %s | %s |\n", r.label, g, tcol, tratio, ocol, oratio, m)
	}
}

func config(t torchLine) string {
	parts := []string{fmt.Sprintf("%d threads", t.Threads)}
	keys := make([]string, 0, len(t.Env))
	for k := range t.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+t.Env[k])
	}
	return strings.Join(parts, ", ")
}

func readGo(path string) (map[string]float64, map[string]float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	out, mem := map[string]float64{}, map[string]float64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			continue
		}
		// Several rounds of the same benchmark: keep the best, as for
		// PyTorch's configurations (a shared machine only slows runs down).
		out[m[1]] = max(out[m[1]], v)
		if mm := memRe.FindStringSubmatch(sc.Text()); mm != nil {
			mb, _ := strconv.ParseFloat(mm[1], 64)
			mem[m[1]] = max(mem[m[1]], mb)
		}
	}
	if len(out) == 0 {
		return nil, nil, fmt.Errorf("%s: no benchmark results", path)
	}
	return out, mem, sc.Err()
}

// readTorch keeps the best configuration of each workload.
func readTorch(path string) (map[string]torchLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	best := map[string]torchLine{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var t torchLine
		if json.Unmarshal(sc.Bytes(), &t) != nil || t.Name == "" {
			continue
		}
		if b, ok := best[t.Name]; !ok || t.Samples > b.Samples {
			best[t.Name] = t
		}
	}
	return best, sc.Err()
}
