"""Next task, skip, a new set (to be written)."""

from django.http import HttpResponse


def task_next(request, slug):
    return HttpResponse("next: to be written", status=501)


def task_skip(request, slug):
    return HttpResponse("skip: to be written", status=501)


def set_start(request, slug):
    return HttpResponse("set: to be written", status=501)
