package cpu

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gotrain/gotrain/backend"
	"github.com/gotrain/gotrain/graph"
	"github.com/gotrain/gotrain/tensor"
)

// TestGroupOuter: members of a group with an outer sum all get the members'
// sum combined by outer (here, another group's values added), and an error
// of outer fails every member.
func TestGroupOuter(t *testing.T) {
	b := graph.NewBuilder("allreduce", 17)
	x := b.Input("x", tensor.Float32, graph.D(3))
	b.OpN(graph.DomainGotrain, "AllReduceSum", 1, x).Named("y")
	b.Output("y")
	m, err := b.Model()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		members       int
		private, fail bool
	}{{1, false, false}, {3, false, false}, {3, true, false}, {1, false, true}, {3, false, true}, {3, true, true}} {
		members, fail := c.members, c.fail
		t.Run(fmt.Sprintf("members=%d,private=%v,fail=%v", members, c.private, fail), func(t *testing.T) {
			be := New(Options{Devices: members, Threads: members, PrivateMemory: c.private})
			grp, err := be.NewCollective(be.Devices())
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			grp.(backend.OuterCollective).SetOuter(func(sum []float32) error {
				calls++
				if fail {
					return errors.New("the other workers are gone")
				}
				for i := range sum {
					sum[i] += 100 // what the other groups sum to
				}
				return nil
			})
			outs := make([][]float32, members)
			errs := make([]error, members)
			var wg sync.WaitGroup
			for r, d := range be.Devices() {
				exe, err := be.Compile(m, d, backend.CompileOptions{Collective: grp, Rank: r})
				if err != nil {
					t.Fatal(err)
				}
				in := tensor.MustFromSlice([]float32{float32(r), 1, float32(10 * r)}, 3)
				wg.Go(func() {
					res, err := backend.RunHost(context.Background(), be, exe, d, map[string]*tensor.Tensor{"x": in})
					if err != nil {
						errs[r] = err
						return
					}
					outs[r] = res["y"].Float32s()
				})
			}
			wg.Wait()
			if calls != 1 {
				t.Errorf("outer called %d times, want once per op", calls)
			}
			n := float32(members)
			want := []float32{n*(n-1)/2 + 100, n + 100, 10*n*(n-1)/2 + 100}
			for r := range members {
				if fail {
					if errs[r] == nil || !strings.Contains(errs[r].Error(), "the other workers are gone") {
						t.Errorf("member %d: %v, want outer's error", r, errs[r])
					}
					continue
				}
				if errs[r] != nil || fmt.Sprint(outs[r]) != fmt.Sprint(want) {
					t.Errorf("member %d: %v %v, want %v", r, outs[r], errs[r], want)
				}
			}
		})
	}
}
