"""Prolific entry and the end of a set (to be written)."""

from django.http import HttpResponse


def prolific_entry(request, slug):
    return HttpResponse("prolific: to be written", status=501)


def set_done(request, slug):
    return HttpResponse("done: to be written", status=501)
