"""A tiny MindSpore training recorded with summary_doctor.mindspore; run by tests/test_mindspore_recording.py.

    python tests/mindspore_train.py OUT_DIR [--api model|fit|loop] [--mode graph|pynative]
                                    [--fault none|zero-init|lr-100x] [--epochs N] [--every N] [--stop-on-error]

Runs in an environment with MindSpore (numpy<2) and summary-doctor installed.
An MLP (20-32-32-4, Tanh) learns four Gaussian blobs (1,024 samples, shuffled,
batch 32: 32 steps an epoch; a held-out set of 256) with Momentum(lr 0.01,
0.9); recorded every 4 steps. ``zero-init`` sets every weight matrix to zeros
before training; ``lr-100x`` trains at lr 1.0 (with ReLU instead of Tanh that
kills the units within a few steps, and the run then shows as dead
activations and vanishing gradients rather than as a learning rate too
large). The end-of-training diagnosis
runs as a user's would; the last line printed is ``RESULT {json}`` with the
verdict(s), the epochs trained and the last loss.
"""

from __future__ import annotations

import argparse
import json

import mindspore as ms
import mindspore.dataset as ds
import numpy as np
from mindspore import nn
from mindspore.common.initializer import initializer
from mindspore.train import Model

from summary_doctor.mindspore import DiagnoseOnEnd, LoopRecorder, Recorder

CLASSES, FEATURES, HIDDEN = 4, 20, 32
LEARNING_RATE = 0.01
COLLECT_FREQ = 4


class MLP(nn.Cell):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Dense(FEATURES, HIDDEN, weight_init="HeUniform")
        self.act1 = nn.Tanh()
        self.fc2 = nn.Dense(HIDDEN, HIDDEN, weight_init="HeUniform")
        self.act2 = nn.Tanh()
        self.fc3 = nn.Dense(HIDDEN, CLASSES, weight_init="HeUniform")

    def construct(self, x):
        return self.fc3(self.act2(self.fc2(self.act1(self.fc1(x)))))


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Four standardised Gaussian blobs, the same centres for every seed, balanced classes."""
    centres = np.random.RandomState(99).randn(CLASSES, FEATURES) * 3.0 / np.sqrt(FEATURES)
    rng = np.random.RandomState(seed)
    labels = rng.permutation(np.arange(n) % CLASSES).astype(np.int32)
    x = centres[labels] + rng.randn(n, FEATURES)
    return ((x - x.mean(0)) / x.std(0)).astype(np.float32), labels


def datasets() -> tuple[ds.Dataset, ds.Dataset]:
    x, y = blobs(1024, 0)
    xe, ye = blobs(256, 1)
    train = ds.NumpySlicesDataset({"data": x, "label": y}, shuffle=False).shuffle(1024).batch(32, drop_remainder=True)
    evaluation = ds.NumpySlicesDataset({"data": xe, "label": ye}, shuffle=False).batch(64)
    return train, evaluation


def network(fault: str) -> MLP:
    net = MLP()
    if fault == "zero-init":
        for param in net.trainable_params():
            if param.name.endswith("weight"):
                param.set_data(initializer("zeros", param.shape, ms.float32))
    return net


def train_with_model(args: argparse.Namespace, net: MLP, optimizer: nn.Optimizer) -> dict:
    train, evaluation = datasets()
    model = Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), optimizer)
    recorder = Recorder(args.out, collect_freq=COLLECT_FREQ, eval_dataset=evaluation)
    doctor = DiagnoseOnEnd(every_n_epochs=args.every, stop_on_error=args.stop_on_error)
    epochs = []
    model.train(args.epochs, train, callbacks=[recorder, doctor, _EpochCount(epochs)], dataset_sink_mode=False)
    return {"epochs": len(epochs), "verdicts": [_verdict(v) for v in doctor.verdicts]}


def fit(args: argparse.Namespace, net: MLP, optimizer: nn.Optimizer) -> dict:
    """``Model.fit`` evaluates with MindSpore's metrics; the recorder writes them as scalars."""
    train, evaluation = datasets()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    model = Model(net, loss_fn, optimizer, metrics={"acc", "loss"})
    doctor = DiagnoseOnEnd(every_n_epochs=args.every, stop_on_error=args.stop_on_error)
    recorder = Recorder(args.out, collect_freq=COLLECT_FREQ)
    model.fit(args.epochs, train, evaluation, callbacks=[recorder, doctor], dataset_sink_mode=False)
    return {"epochs": args.epochs, "verdicts": [_verdict(v) for v in doctor.verdicts]}


def train_with_loop(args: argparse.Namespace, net: MLP, optimizer: nn.Optimizer) -> dict:
    train, evaluation = datasets()
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")

    def forward(x, y):
        return loss_fn(net(x), y)

    grad_fn = ms.value_and_grad(forward, None, optimizer.parameters)

    @ms.jit
    def train_step(x, y):
        loss, grads = grad_fn(x, y)
        optimizer(grads)
        return loss, grads

    recorder = LoopRecorder(
        args.out,
        net,
        optimizer,
        loss_fn=loss_fn,
        collect_freq=COLLECT_FREQ,
        eval_dataset=evaluation,
        train_dataset=train,
        diagnose=True,
    )
    with recorder:
        for _ in range(args.epochs):
            net.set_train()
            for x, y in train.create_tuple_iterator(num_epochs=1):
                loss, grads = train_step(x, y)
                recorder.step(loss, grads=grads, inputs=x, labels=y)
            recorder.epoch_end()
    return {"epochs": recorder.epoch, "verdicts": [_verdict(recorder.verdict)] if recorder.verdict else []}


class _EpochCount(ms.train.Callback):
    def __init__(self, epochs: list) -> None:
        super().__init__()
        self.epochs = epochs

    def on_train_epoch_end(self, run_context) -> None:
        self.epochs.append(run_context.original_args().cur_epoch_num)


def _verdict(verdict) -> dict:
    return {
        "errors": verdict.errors,
        "warnings": verdict.warnings,
        "ids": sorted(verdict.ids),
        "findings": [{k: f[k] for k in ("id", "severity", "title")} for f in verdict.findings],
        "checklist": list(verdict.checklist),
        "report": verdict.report,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--api", choices=("model", "fit", "loop"), default="model")
    parser.add_argument("--mode", choices=("graph", "pynative"), default="graph")
    parser.add_argument("--fault", choices=("none", "zero-init", "lr-100x"), default="none")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--every", type=int, default=None, help="diagnose every N epochs too")
    parser.add_argument("--stop-on-error", action="store_true")
    args = parser.parse_args()
    ms.set_context(mode=ms.GRAPH_MODE if args.mode == "graph" else ms.PYNATIVE_MODE, device_target="CPU")
    ms.set_seed(0)
    ds.config.set_seed(0)
    ds.config.set_num_parallel_workers(1)
    net = network(args.fault)
    lr = LEARNING_RATE * (100 if args.fault == "lr-100x" else 1)
    optimizer = nn.Momentum(net.trainable_params(), learning_rate=lr, momentum=0.9)
    train = {"model": train_with_model, "fit": fit, "loop": train_with_loop}[args.api]
    result = train(args, net, optimizer)
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
