package conformance

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gotrain/gotrain/backend"
)

// Open opens a registered backend by name, with its default options, for
// a conformance run. A backend that is not compiled into the program
// (backends register themselves when their package is imported, some only
// under a build tag) and one that cannot start here (no device) are told
// apart, and the error names the backends available.
func Open(name string) (backend.Backend, error) {
	names := backend.Names()
	if !slices.Contains(names, name) {
		return nil, fmt.Errorf("backend %q is not compiled into this program (available: %s)", name, strings.Join(names, ", "))
	}
	b, err := backend.Open(name, nil)
	if err != nil {
		return nil, fmt.Errorf("backend %q is compiled in but not available here: %w", name, err)
	}
	if len(b.Devices()) == 0 {
		return nil, fmt.Errorf("backend %q is compiled in but has no device here", name)
	}
	return b, nil
}
