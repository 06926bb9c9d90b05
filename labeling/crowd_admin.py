"""Admin for guidelines, gold items, enrollments and quizzes (to be written)."""
