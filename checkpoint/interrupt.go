package checkpoint

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/gotrain/gotrain/train"
)

// InterruptReason is the stop reason Interrupt gives the fit loop.
const InterruptReason = "interrupted"

// Interrupt turns SIGINT (Ctrl-C) and SIGTERM into a clean stop: after the
// batch that is running when the signal arrives, it writes a resumable
// training-state file to Path, asks the loop to stop, and prints
//
//	training interrupted at epoch E step S; resume with: <ResumeCommand> --resume <Path>
//
// A second signal is not caught: it ends the process at once, as it would
// without gotrain (the state file written so far is atomic, so nothing is
// half-written).
//
// The file holds the Stateful callbacks' states as the loop collects them;
// the loop's Snapshot must be taken before OnTrainEnd, which may change the
// weights (EarlyStopping's restore).
//
// In a multi-worker run the stop is the workers' common decision: with
// Agree set, a signal only asks for it, and the run stops when Agree says
// so, which must be after the same batch on every worker (a signal may
// reach one worker, or reach them at different batches). Only one worker
// writes the state: on the others Path is "".
type Interrupt struct {
	Path          string    // where the state goes; "" for none (see Agree)
	ResumeCommand string    // the command that restarts this run, without --resume
	Out           io.Writer // where the message goes; nil for os.Stderr
	Signals       []os.Signal
	// Agree, when set, is called at every batch's end and epoch's end with
	// whether a signal has arrived at this process, and returns whether
	// the run stops there (strategy.MultiWorker's RequestStop and
	// Stopping make such a decision).
	Agree func(signalled bool) bool

	ch      chan os.Signal
	done    chan struct{}
	wg      sync.WaitGroup
	got     atomic.Bool
	handled bool
}

// Interrupted reports whether a signal stopped training.
func (in *Interrupt) Interrupted() bool { return in.handled }

// Trigger acts as if the signal had arrived (for tests and for embedding
// programs with their own signal handling).
func (in *Interrupt) Trigger() { in.got.Store(true) }

func (in *Interrupt) OnTrainBegin(c *train.Context) error {
	if in.Path != "" {
		if err := CheckWritable(in.Path); err != nil {
			return fmt.Errorf("interrupt checkpoint: %w", err)
		}
	}
	in.handled = false
	if in.done == nil { // not listening since Listen
		in.got.Store(false)
		in.Listen()
	}
	return nil
}

// Listen starts catching the signals before training begins (OnTrainBegin
// does otherwise), so that a signal that arrives while the run is being
// set up (graphs compiled, data loaded) stops it after its first batch
// instead of killing the process. Close stops it.
func (in *Interrupt) Listen() {
	if in.done != nil {
		return
	}
	sigs := in.Signals
	if len(sigs) == 0 {
		sigs = []os.Signal{os.Interrupt, syscall.SIGTERM}
	}
	in.ch, in.done = make(chan os.Signal, 1), make(chan struct{})
	signal.Notify(in.ch, sigs...)
	in.wg.Add(1)
	go func(ch chan os.Signal, done chan struct{}) {
		defer in.wg.Done()
		select {
		case <-ch:
			in.got.Store(true)
		case <-done:
		}
		// Give the signals back: a second Ctrl-C kills the process.
		signal.Stop(ch)
	}(in.ch, in.done)
}

func (in *Interrupt) OnBatchEnd(c *train.Context, batch int, _ train.Logs) error {
	return in.poll(c)
}

func (in *Interrupt) OnEpochEnd(c *train.Context, epoch int, _ train.Logs) error {
	return in.poll(c)
}

func (in *Interrupt) poll(c *train.Context) error {
	stop := in.got.Load()
	if in.Agree != nil {
		stop = in.Agree(stop)
	}
	if in.handled || !stop {
		return nil
	}
	in.handled = true
	c.StopTraining(InterruptReason)
	if in.Path == "" {
		return nil
	}
	s, err := c.Snapshot()
	if err != nil {
		return fmt.Errorf("interrupted, but the training state could not be captured: %w", err)
	}
	if err := SaveState(in.Path, s); err != nil {
		return fmt.Errorf("interrupted, but the training state could not be saved: %w", err)
	}
	out := in.Out
	if out == nil {
		out = os.Stderr
	}
	cmd := in.ResumeCommand
	if cmd == "" {
		cmd = "gotrain train ..."
	}
	fmt.Fprintf(out, "training interrupted at epoch %d step %d; resume with: %s --resume %s\n", c.Epoch+1, c.Step, cmd, in.Path)
	return nil
}

func (in *Interrupt) OnTrainEnd(*train.Context, train.Logs) error {
	in.Close()
	return nil
}

// Close stops catching signals. OnTrainEnd calls it; call it too (deferred)
// where the fit may end without OnTrainEnd. Calling it twice is harmless.
func (in *Interrupt) Close() {
	if in.done != nil {
		close(in.done)
		in.wg.Wait()
		in.done = nil
	}
}

func (in *Interrupt) OnEpochBegin(*train.Context, int) error { return nil }
func (in *Interrupt) OnBatchBegin(*train.Context, int) error { return nil }
