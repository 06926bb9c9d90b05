"""Who may see the researcher's panel: staff. One decorator for every panel view."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied


def researcher_required(view):
    """Anonymous visitors are sent to log in; a logged-in worker who is not staff gets 403
    (sending them to log in again would loop)."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("The researcher's panel is for staff.")
        return view(request, *args, **kwargs)

    return wrapped
