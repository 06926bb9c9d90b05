"""Campaign rules that pause workers (issue 11): to be written."""


def rules_apply(*, campaign, worker):
    """Pause the worker when a rule says so (stub)."""
    return None
