"""Consent, withdrawal and the qualification quiz (to be written)."""

from django.http import HttpResponse


def consent(request, slug):
    return HttpResponse("consent: to be written", status=501)


def withdraw(request, slug):
    return HttpResponse("withdraw: to be written", status=501)


def quiz(request, slug):
    return HttpResponse("quiz: to be written", status=501)
