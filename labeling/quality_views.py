"""The paused page and reports (to be written)."""

from django.http import HttpResponse


def paused(request, slug):
    return HttpResponse("paused: to be written", status=501)


def item_report(request, slug, pk):
    return HttpResponse("report: to be written", status=501)
