// Command report prints gotrain's benchmark table: it reads the output of
// `go test -bench` (gotrain's and ONNX Runtime's samples/s, and the line
// naming the kernels in use) and the JSON lines of torch_bench.py
// (PyTorch's, one line per configuration tried), keeps the best figure per
// workload (of PyTorch's configurations, and of the rounds of each when
// scripts/bench.sh runs several), and prints each workload with the ratios
// gotrain/PyTorch and gotrain/ONNX Runtime.
//
//	go run ./bench/report [-prescott go-prescott.txt] [-mem-go mem.txt] [-mem-torch mem.jsonl] [-mpi mpi.txt] go-bench.txt torch.jsonl
//
// -prescott adds a table of gotrain's figures from a run with
// OPENBLAS_CORETYPE=Prescott (OpenBLAS's SSE3 kernel, which Debian's
// OpenBLAS 0.3.21 falls back to on CPUs it does not know). -mem-go and
// -mem-torch give the peak resident memory of each workload measured in a
// process of its own (ru_maxrss on both sides). -mpi adds the multi-worker
// table from the output of `gotrain bench --train --strategy multiworker`
// under mpirun: workers of one thread against one worker of as many
// threads, and the bytes all-reduced a step.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

type torchLine struct {
	Name    string            `json:"name"`
	Samples float64           `json:"samples_per_sec"`
	Threads int               `json:"threads"`
	Env     map[string]string `json:"env"`
	PeakMB  float64           `json:"peak_rss_mb"`
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

var (
	benchLine   = regexp.MustCompile(`^Benchmark(\S+?)(-\d+)?\s+\d+\s+.*?([\d.]+) (samples/s|images/s)`)
	memRe       = regexp.MustCompile(`([\d.]+) MB-peak-rss`)
	pairedRe    = regexp.MustCompile(`^BenchmarkMirroredPaired/cnn/32\S*\s.*?([\d.]+) mirrored/single`)
	kernelsLine = regexp.MustCompile(`^kernels: (.*)$`)
)

// goRun is what one file of `go test -bench` output holds.
type goRun struct {
	rate    map[string]float64 // best samples/s per benchmark
	mem     map[string]float64 // peak MB per benchmark
	paired  []float64          // BenchmarkMirroredPaired's ratios, one per round
	kernels []string           // distinct kernel lines, in order
}

func main() {
	prescott := flag.String("prescott", "", "go test -bench output of a run with OPENBLAS_CORETYPE=Prescott")
	memGo := flag.String("mem-go", "", "go test -bench output of the memory pass (one benchmark per process)")
	memTorch := flag.String("mem-torch", "", "torch_bench.py output of the memory pass (one workload per process)")
	mpiRuns := flag.String("mpi", "", "gotrain bench --strategy multiworker output (mpirun runs)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: report [-prescott FILE] [-mem-go FILE] [-mem-torch FILE] [-mpi FILE] GO_BENCH_OUTPUT TORCH_JSONL")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), flag.Arg(1), *prescott, *memGo, *memTorch); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	if *mpiRuns != "" {
		if err := multiWorker(*mpiRuns); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(1)
		}
	}
}

func run(goPath, torchPath, prescottPath, memGoPath, memTorchPath string) error {
	ours, err := readGo(goPath, true)
	if err != nil {
		return err
	}
	torch, err := readTorch(torchPath)
	if err != nil {
		return err
	}
	mem := ours.mem
	if memGoPath != "" {
		m, err := readGo(memGoPath, false)
		if err != nil {
			return err
		}
		mem = m.mem
	}
	torchMem := map[string]float64{}
	if memTorchPath != "" {
		tm, err := readTorch(memTorchPath)
		if err != nil {
			return err
		}
		for k, v := range tm {
			torchMem[k] = v.PeakMB
		}
	}
	for _, k := range ours.kernels {
		fmt.Println("gotrain kernels:", k)
	}
	fmt.Println()
	fmt.Println("| workload | gotrain | PyTorch (best config) | gotrain / PyTorch | ONNX Runtime | gotrain / ORT | gotrain peak MB | PyTorch peak MB |")
	fmt.Println("|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		g, ok := ours.rate[r.ours]
		if !ok {
			continue
		}
		tcol, tratio := "-", "-"
		if t, ok := torch[r.torch]; ok {
			tcol = fmt.Sprintf("%.0f (%s)", t.Samples, config(t))
			tratio = fmt.Sprintf("%.2fx", g/t.Samples)
		}
		ocol, oratio := "-", "-"
		if o, ok := ours.rate[r.ort]; ok {
			ocol = fmt.Sprintf("%.0f", o)
			oratio = fmt.Sprintf("%.2fx", g/o)
		}
		fmt.Printf("| %s | %.0f | %s | %s | %s | %s | %s | %s |\n", r.label, g, tcol, tratio, ocol, oratio, mb(mem, r.ours), mb(torchMem, r.torch))
	}
	if m, s := ours.rate["TrainMirrored2/cnn/32"], ours.rate["Train/cnn/32"]; m > 0 && s > 0 {
		fmt.Printf("\nMirrored, 2 replicas, against single-device training (CNN, batch 32): %.2fx\n", m/s)
	}
	if len(ours.paired) > 0 {
		// The median round: a ratio of two best rounds is as noisy as its
		// luckier side.
		p := slices.Sorted(slices.Values(ours.paired))
		rounds := make([]string, len(ours.paired))
		for i, v := range ours.paired {
			rounds[i] = fmt.Sprintf("%.2fx", v)
		}
		median := (p[(len(p)-1)/2] + p[len(p)/2]) / 2
		fmt.Printf("The same, in alternating blocks of 10 steps in one process: %.2fx (median of the rounds: %s)\n", median, strings.Join(rounds, ", "))
	}
	if prescottPath == "" {
		return nil
	}
	pres, err := readGo(prescottPath, true)
	if err != nil {
		return err
	}
	fmt.Println("\nWith OPENBLAS_CORETYPE=Prescott in gotrain's environment (OpenBLAS's SSE3 kernel, its fallback on CPUs it does not know):")
	for _, k := range pres.kernels {
		fmt.Println("gotrain kernels:", k)
	}
	fmt.Println()
	fmt.Println("| workload | gotrain | against the run above | gotrain / PyTorch | gotrain / ORT |")
	fmt.Println("|---|---|---|---|---|")
	for _, r := range rows {
		g, ok := pres.rate[r.ours]
		if !ok {
			continue
		}
		tratio, oratio, same := "-", "-", "-"
		if t, ok := torch[r.torch]; ok {
			tratio = fmt.Sprintf("%.2fx", g/t.Samples)
		}
		if o, ok := ours.rate[r.ort]; ok {
			oratio = fmt.Sprintf("%.2fx", g/o)
		}
		if m, ok := ours.rate[r.ours]; ok {
			same = fmt.Sprintf("%.2fx", g/m)
		}
		fmt.Printf("| %s | %.0f | %s | %s | %s |\n", r.label, g, same, tratio, oratio)
	}
	return nil
}

func mb(m map[string]float64, k string) string {
	if v, ok := m[k]; ok && v > 0 {
		return fmt.Sprintf("%.0f", v)
	}
	return "-"
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

// readGo reads `go test -bench` output; needRates says that a file with no
// benchmark figures is an error.
func readGo(path string, needRates bool) (*goRun, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := &goRun{rate: map[string]float64{}, mem: map[string]float64{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := kernelsLine.FindStringSubmatch(sc.Text()); m != nil {
			if !slices.Contains(r.kernels, m[1]) {
				r.kernels = append(r.kernels, m[1])
			}
			continue
		}
		if m := pairedRe.FindStringSubmatch(sc.Text()); m != nil {
			if v, err := strconv.ParseFloat(m[1], 64); err == nil {
				r.paired = append(r.paired, v)
			}
			continue
		}
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
		r.rate[m[1]] = max(r.rate[m[1]], v)
		if mm := memRe.FindStringSubmatch(sc.Text()); mm != nil {
			v, _ := strconv.ParseFloat(mm[1], 64)
			r.mem[m[1]] = max(r.mem[m[1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if needRates && len(r.rate) == 0 {
		return nil, fmt.Errorf("%s: no benchmark results", path)
	}
	return r, nil
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

// mwLine and mwDetail are the two lines of a multi-worker bench run.
var (
	mwLine   = regexp.MustCompile(`^(\S+) training \(multiworker, (\d+) workers? x (\d+) threads?\), batch (\d+): ([\d.]+) samples/s`)
	mwDetail = regexp.MustCompile(`all-reduced per step: (\d+) bytes; in collectives: ([\d.]+) ms/step.*all-reduce alone: ([\d.]+) us`)
)

// mwRun is the best of a configuration's rounds.
type mwRun struct {
	samples   float64
	bytes     int
	collMS    float64 // time in collectives a step, waits included
	aloneUS   float64 // the all-reduce with every worker ready
	haveAlone bool
}

// multiWorker prints the multi-worker table from the bench runs in path:
// for each model and batch, workers of one thread against one worker of
// as many threads.
func multiWorker(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	runs := map[string]*mwRun{} // by "model/batch/workers/threads"
	var last *mwRun
	for _, line := range strings.Split(string(b), "\n") {
		if m := mwLine.FindStringSubmatch(line); m != nil {
			key := strings.Join(m[1:5], "/")
			v, _ := strconv.ParseFloat(m[5], 64)
			r := runs[key]
			if r == nil {
				r = &mwRun{}
				runs[key] = r
			}
			r.samples = max(r.samples, v)
			last = r
			continue
		}
		if m := mwDetail.FindStringSubmatch(line); m != nil && last != nil {
			last.bytes, _ = strconv.Atoi(m[1])
			coll, _ := strconv.ParseFloat(m[2], 64)
			alone, _ := strconv.ParseFloat(m[3], 64)
			if !last.haveAlone || alone < last.aloneUS {
				last.aloneUS, last.collMS, last.haveAlone = alone, coll, true
			}
		}
	}
	keys := make([]string, 0, len(runs))
	for k := range runs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Println()
	fmt.Println("| multi-worker training (Adam), global batch | 1 worker x N threads | N workers x 1 thread (mpirun) | workers / threads | all-reduced per step | that all-reduce alone | in collectives per step |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, k := range keys {
		p := strings.Split(k, "/") // model, workers, threads, batch
		if p[2] != "1" || p[1] == "1" {
			continue
		}
		many := runs[k]
		one, ok := runs[strings.Join([]string{p[0], "1", p[1], p[3]}, "/")]
		if !ok {
			continue
		}
		fmt.Printf("| %s, batch %s, N = %s | %.0f samples/s | %.0f samples/s | %.2fx | %d bytes | %.0f us | %.2f ms |\n",
			strings.ToUpper(p[0]), p[3], p[1], one.samples, many.samples, many.samples/one.samples, many.bytes, many.aloneUS, many.collMS)
	}
	return nil
}
