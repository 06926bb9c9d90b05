"""Admin for pauses and reports (to be written)."""
