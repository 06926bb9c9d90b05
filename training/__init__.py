"""Training and evaluation steps, each runnable as ``python -m training.<step>``. Never Django."""
