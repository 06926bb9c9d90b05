"""The task queue (issue 11): to be written."""


def assignment_done(*, judgment) -> None:
    """Close the worker's reservation of the judged item (stub)."""
