"""What every ``python -m training.<step>`` command shares: its parser, its logging and the
checks its config dataclass makes on numbers."""

from __future__ import annotations

import argparse
import logging
import math
import sys


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def log_to_stderr() -> None:
    """Logs and progress on stderr, so stdout's last line stays the JSON result."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )


def at_least(name: str, value, low: int) -> None:
    """``value`` must be an integer (not a bool) of at least ``low``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def check_optimizer(lr: float, weight_decay: float, max_grad_norm: float | None) -> None:
    """The AdamW settings every trainer takes."""
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr}")
    if not (math.isfinite(weight_decay) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    if max_grad_norm is not None and not max_grad_norm > 0:
        raise ValueError(f"max_grad_norm must be > 0 or None, got {max_grad_norm}")


def check_device(device: str | None) -> None:
    if device not in (None, "cpu", "cuda"):
        raise ValueError(f'device must be "cpu", "cuda" or None, got {device!r}')
