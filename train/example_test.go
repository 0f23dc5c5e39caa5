package train_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gotrain/gotrain/backend/cpu"
	"github.com/gotrain/gotrain/checkpoint"
	"github.com/gotrain/gotrain/data"
	"github.com/gotrain/gotrain/models"
	"github.com/gotrain/gotrain/optim"
	"github.com/gotrain/gotrain/train"
)

// Example trains the seed CNN on 1,000 MNIST images with augmentation,
// decoupled weight decay and early stopping on two mirrored replicas,
// evaluates it on test images, and exports best_model.onnx.
func Example() {
	trainSet, test, err := data.Builtin("mnist") // the GoMNIST module's IDX files
	if err != nil {
		fmt.Println(err)
		return
	}
	trainSet.Rescale(1 / 255.0)
	test.Rescale(1 / 255.0)
	trainSet, _ = trainSet.StratifiedSubset(1000, 1)
	test, _ = test.Head(1000)
	trainSet, val, _ := trainSet.Split(0.2, 1)

	m, _ := models.Build("cnn", models.Options{Input: []int{1, 28, 28}, Classes: 10, Seed: 1})
	es := checkpoint.NewEarlyStopping("val_loss", 2)
	es.RestoreBestWeights = true
	tr, err := train.NewTrainer(m, train.Config{
		Epochs: 8, BatchSize: 32, Seed: 1,
		Backend:   cpu.New(cpu.Options{Devices: 2}),
		Strategy:  "mirrored",
		Optim:     optim.Config{Name: "adamw", LR: 2e-3, WeightDecay: 1e-4, DecayMode: optim.DecayDecoupled},
		Callbacks: []train.Callback{es},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := tr.Fit(context.Background(), trainSet, val)
	if err != nil {
		fmt.Println(err)
		return
	}
	logs, _ := tr.Evaluate(context.Background(), test)
	fmt.Println("test accuracy above 90%:", logs["accuracy"] > 0.9)

	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	err = checkpoint.Export(m, res.Weights, map[string]string{"example": "mnist"}, filepath.Join(dir, "best_model.onnx"))
	fmt.Println("exported:", err == nil)
	// Output:
	// test accuracy above 90%: true
	// exported: true
}
