package cuda_test

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"

	"github.com/gotrain/gotrain/backend/cuda"
	"github.com/gotrain/gotrain/graph"
)

// tested records the ops the kernel tests ran on a device; TestMain fails a
// full run in which some registered op was never run.
var (
	testedMu sync.Mutex
	tested   = map[string]bool{}
)

func noteTested(domain, op string) {
	testedMu.Lock()
	tested[graph.NormDomain(domain)+"::"+op] = true
	testedMu.Unlock()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && len(tested) > 0 {
		var missing []string
		for _, op := range cuda.Ops() {
			if !tested[op] {
				missing = append(missing, op)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			fmt.Printf("FAIL: ops with a CUDA kernel that no kernel test ran: %v\n", missing)
			code = 1
		}
	}
	os.Exit(code)
}
