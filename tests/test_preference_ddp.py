"""Data-parallel training (accelerate DDP, gloo on the CPU) syncs gradients for real."""

import os
import subprocess
import sys

import pytest
import torch

from models_backend.reward import load_preference_model
from tests.test_experiments import write_rankings
from tests.test_objectives import rankings


def train(tmp_path, data, name, *, processes, batch_size, accum, objective):
    out = tmp_path / name
    launcher = [
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        "-m",
    ]
    command = [sys.executable, *(launcher if processes > 1 else ["-m"]), "training.preference"]
    command += ["--train", data, "--eval", data, "--format", "rankings", "--model"]
    command += ["tiny-random", "--device", "cpu", "--max-length", "96", "--lr", "1e-2"]
    command += ["--batch-size", str(batch_size), "--grad-accum", str(accum), "--out", str(out)]
    command += ["--objective", objective]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(done.stdout.strip().splitlines()) == 1  # only the main process reports
    return load_preference_model(out, device="cpu")[0].state_dict()


@pytest.mark.parametrize("objective", ["ranked", "imitation"])
def test_two_processes_train_the_same_weights_as_one_process_accumulating_two_batches(
    tmp_path, objective
):
    data = write_rankings(tmp_path / "r.jsonl", rankings(32, 5))
    one = train(tmp_path, data, "one", processes=1, batch_size=4, accum=2, objective=objective)
    two = train(tmp_path, data, "two", processes=2, batch_size=4, accum=1, objective=objective)
    # Without the gradient all-reduce, rank 0 would have learned from its own batches only.
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], atol=2e-5, rtol=1e-4, msg=name)
