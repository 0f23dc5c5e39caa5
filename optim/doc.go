// Package optim builds optimizer updates as graphs, plus the learning-rate
// schedules that drive them.
//
// # The update graph
//
// An optimizer here is not code that touches weights: BuildUpdate turns a
// Config and the list of trainable parameters into an *update graph*, an
// ONNX-style model of fused update ops (domain ai.gotrain: SGDUpdate,
// AdamUpdate, RMSpropUpdate, AdagradUpdate, and GlobalNormScale for clipping
// by global norm) that any backend compiles and runs like the training graph
// itself. The weights and the optimizer state stay on the device; the host
// feeds two scalars per step.
//
// The update model's inputs are, in order:
//
//	"lr"               float32 scalar: the learning rate of this step (Schedule.LR)
//	"step"             int64 scalar: the 1-based index of this update
//	then per parameter p, in the order given:
//	p.Name             the parameter (float32, p.Shape)
//	"grad:"+p.Name     its gradient
//	p.Name+":"+slot    each state slot of the optimizer (see Slots)
//
// and its outputs, per parameter, are the new values, named
// p.Name+":next" and p.Name+":"+slot+":next". Update.InPlace maps each
// output to the input whose buffer it overwrites, ready for the backend's
// CompileOptions.InPlace, so a step allocates nothing and copies nothing.
// InitState gives the initial slot values (zeros, or Adagrad's initial
// accumulator); the slots are the optimizer state to save and restore.
//
// Slots per optimizer: sgd with momentum, "momentum" and "nesterov":
// "momentum"; adam and adamw: "m" and "v"; rmsprop: "square_avg", plus
// "momentum" when Momentum > 0 and "grad_avg" when Centered; adagrad: "sum".
//
// # Semantics
//
// The formulas are PyTorch's (torch.optim) by default, including its
// defaults for betas, epsilons and RMSprop's alpha; see Config. Where Keras
// differs and users expect it, an option selects Keras' form:
//
//   - Adam's epsilon. PyTorch adds eps to the bias-corrected sqrt(v):
//     p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps). Keras (and
//     TensorFlow) folds the bias correction into the step size and adds eps
//     to the raw sqrt(v): p -= lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps),
//     with default eps 1e-7. EpsMode "keras" selects that form.
//   - L2 regularization. Weight decay in L2 mode adds wd*p to the gradient
//     (torch.optim's weight_decay). A Keras kernel_regularizer=l2(λ) adds the
//     gradient of λ*sum(p²), that is 2λ*p: use WeightDecay = 2λ (KerasL2).
//   - Decoupled decay (AdamW, DecayMode "decoupled"): p *= 1 - lr*wd before
//     the update, with the step's lr (group multiplier included), as
//     torch.optim.AdamW and Keras' AdamW do.
//
// Clipping follows torch.nn.utils: ClipNorm scales all gradients by
// min(1, ClipNorm/(total_norm + 1e-6)) where total_norm is the L2 norm of
// all gradients together; ClipValue then clamps each element to
// [-ClipValue, ClipValue]. Both act before weight decay is added.
//
// # Parameter groups and weight decay
//
// Parameters have a Kind: Weight (rank >= 2 kernels and matrices), Bias or
// Norm (the scale and shift of a normalization layer). Biases and norm
// parameters get no weight decay unless Config.DecayBiasNorm is set, as is
// usual practice (PyTorch decays every parameter it is given: set
// DecayBiasNorm to reproduce it). Groups refine this per parameter: the
// first Group whose name patterns and kinds match a parameter sets its
// learning-rate multiplier and, when given, its weight decay.
//
// # Schedules
//
// A Schedule is host-side arithmetic: LR(t, epoch) is the rate of the next
// update after t updates, a pure function of (t, epoch) times the Scale
// that callbacks such as ReduceLROnPlateau set. A trainer keeps the
// normalized config (Config.Normalized), sets a cosine schedule's length
// with SetTotal, and per step feeds "lr" = Schedule.LR(t, epoch) and
// "step" = t+1. Nothing is recompiled when the rate changes. ParseSchedule
// reads the command line's specs ("cosine:warmup=500,min=1e-5",
// "step:size=10,gamma=0.1", "exp:gamma=0.95", "constant").
package optim
