"""Writes. Every change to the lab's data goes through a function here: keyword-only,
typed, one transaction each. Views and tasks call these; they never save models directly."""
