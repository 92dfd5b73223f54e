"""Benchmark: what recording with summary_doctor.mindspore costs a training, against training without it.

One small CNN (LeNet-like, 1x32x32 inputs, 10 classes, batch 32, Momentum) is
trained with ``Model.train`` for ``--steps`` steps in each configuration,
each in a fresh process of a MindSpore python (``--python``, default
``$SUMMARY_DOCTOR_MINDSPORE_PYTHON``), in GRAPH_MODE and PYNATIVE_MODE:

- ``none``: no callback (the baseline);
- ``collector``: ``SummaryCollector(collect_freq=10)`` with its defaults
  (loss, the first 5 parameters, graph, lineage; landscape off);
- ``recorder``: ``Recorder(collect_freq=10)``: every parameter (and at step
  0), every gradient, every activation cell, input and label;
- ``recorder+eval``: the same plus an evaluation on 512 held-out samples
  after each epoch (``eval_loss``, ``eval_acc``, ``eval/input``, ``eval/label``).

It times the steps after the first epoch (compilation and warm-up left
out) and the whole ``model.train`` call, repeats each configuration
(interleaved, so background load hits all alike), keeps the best, and prints
each as a ratio to ``none`` measured in the same run.

    python benchmarks/bench_recording.py                     # 600 steps, 3 repeats
    python benchmarks/bench_recording.py --quick             # 120 steps, 1 repeat
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = ("none", "collector", "recorder", "recorder+eval")
MODES = ("graph", "pynative")
STEPS_PER_EPOCH = 60
BATCH = 32


def _worker(config: str, mode: str, steps: int, out: str) -> dict[str, float]:
    """Train once in this process (a MindSpore python) and time it."""
    import mindspore as ms
    import mindspore.dataset as ds
    import numpy as np
    from mindspore import nn
    from mindspore.train import Callback, Model, SummaryCollector

    from summary_doctor.mindspore import Recorder

    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE, device_target="CPU")
    ms.set_seed(0)
    ds.config.set_seed(0)

    class LeNet(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5, pad_mode="valid")
            self.relu1 = nn.ReLU()
            self.conv2 = nn.Conv2d(6, 16, 5, pad_mode="valid")
            self.relu2 = nn.ReLU()
            self.pool = nn.MaxPool2d(2, 2)
            self.flatten = nn.Flatten()
            self.fc1 = nn.Dense(16 * 5 * 5, 120)
            self.relu3 = nn.ReLU()
            self.fc2 = nn.Dense(120, 84)
            self.relu4 = nn.ReLU()
            self.fc3 = nn.Dense(84, 10)

        def construct(self, x):
            x = self.pool(self.relu1(self.conv1(x)))
            x = self.pool(self.relu2(self.conv2(x)))
            x = self.relu3(self.fc1(self.flatten(x)))
            return self.fc3(self.relu4(self.fc2(x)))

    rng = np.random.RandomState(0)
    n = STEPS_PER_EPOCH * BATCH
    x = rng.randn(n, 1, 32, 32).astype(np.float32)
    y = rng.randint(0, 10, n).astype(np.int32)
    train = ds.NumpySlicesDataset({"image": x, "label": y}, shuffle=False).batch(BATCH)
    held_out = ds.NumpySlicesDataset({"image": x[:512], "label": y[:512]}, shuffle=False).batch(128)
    net = LeNet()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    model = Model(net, loss, nn.Momentum(net.trainable_params(), 0.01, 0.9))

    class Clock(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.start: tuple[float, float] | None = None

        def on_train_epoch_end(self, run_context) -> None:
            if self.start is None:
                self.start = (time.perf_counter(), _cpu_seconds())

    clock = Clock()
    callbacks: list = [clock]
    if config == "collector":
        callbacks.append(SummaryCollector(out, collect_freq=10, collect_specified_data={"collect_landscape": None}))
    elif config.startswith("recorder"):
        callbacks.append(Recorder(out, collect_freq=10, eval_dataset=held_out if "eval" in config else None))
    epochs = max(2, steps // STEPS_PER_EPOCH)
    begin = time.perf_counter()
    model.train(epochs, train, callbacks=callbacks, dataset_sink_mode=False)
    end, cpu = time.perf_counter(), _cpu_seconds()
    assert clock.start is not None
    steps_timed = (epochs - 1) * STEPS_PER_EPOCH
    return {
        "step_ms": (end - clock.start[0]) / steps_timed * 1e3,
        "step_cpu_ms": (cpu - clock.start[1]) / steps_timed * 1e3,
        "total_s": end - begin,
    }


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the summary writer's pool)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _measure(python: str, config: str, mode: str, steps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-recording-") as out:
        command = [python, __file__, "--worker", config, mode, str(steps), out]
        env = {**os.environ, "GLOG_v": "3", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{config}/{mode} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=os.environ.get("SUMMARY_DOCTOR_MINDSPORE_PYTHON"))
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="120 steps, 1 repeat")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        config, mode, steps, out = args.worker
        print(json.dumps(_worker(config, mode, int(steps), out)))
        return
    if not args.python:
        raise SystemExit(
            "give --python (a python with MindSpore and summary-doctor) or set SUMMARY_DOCTOR_MINDSPORE_PYTHON"
        )
    steps, repeat = (120, 1) if args.quick else (args.steps, args.repeat)
    best: dict[tuple[str, str], dict[str, float]] = {}
    for _ in range(repeat):
        for mode in MODES:
            for config in CONFIGS:
                result = _measure(args.python, config, mode, steps)
                key = (config, mode)
                best[key] = {k: min(v, best.get(key, result)[k]) for k, v in result.items()}
    print(f"best of {repeat}, {steps} steps of batch {BATCH}; per step: after the first epoch (wall and CPU)")
    header = f"{'mode':9} {'configuration':14} {'ms/step':>8} {'x none':>7} {'CPU ms':>8} {'x none':>7}"
    print(header + f" {'total s':>8} {'x none':>7}")
    for mode in MODES:
        base = best[("none", mode)]
        for config in CONFIGS:
            r = best[(config, mode)]
            cells = [(r[k], r[k] / base[k]) for k in ("step_ms", "step_cpu_ms", "total_s")]
            print(f"{mode:9} {config:14} " + " ".join(f"{value:8.2f} {ratio:7.2f}" for value, ratio in cells))


if __name__ == "__main__":
    sys.exit(main())
