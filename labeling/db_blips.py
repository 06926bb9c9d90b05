"""A request that meets a dropped database connection is answered cleanly, never with a 500.

The database going away for a moment (a restart, a failover, an operator ending
connections) breaks the requests in flight at that instant. This middleware, last in the
list so it sees a view's exception first, closes the broken connection and then:

- retries the view once, when nothing the request did was committed yet (any method:
  everything it wrote was rolled back with its transaction, so running it again is what
  the person asked for, once);
- when the request had already committed a write (a message saved, then the page failed
  to render), sends the browser to the page it came from, which shows what was saved: a
  send whose turn was saved is never reported as failed (htmx: a refresh of the page);
- else (the retry met the blip too) answers 503 with a short "try again" page that needs
  no database, and Retry-After.

Writes are seen through an execute wrapper and the connection's commit: a statement that
changes data counts once it is committed (at once in autocommit, else when the outermost
transaction commits)."""

from __future__ import annotations

import logging
from inspect import iscoroutinefunction

from django.db import InterfaceError, OperationalError, connections
from django.http import HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.utils.deprecation import MiddlewareMixin
from django.utils.http import url_has_allowed_host_and_scheme

log = logging.getLogger(__name__)
RETRY_AFTER_S = 5
READ_ONLY = ("SELECT", "SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "SET", "SHOW", "PRAGMA")


class _Writes:
    """Whether the request has committed a write: a statement that changes data, at once in
    autocommit, else once its transaction commits (an execute wrapper sees the statements;
    the connection's commit and rollback, wrapped for the request, end a transaction)."""

    def __init__(self):
        self.committed = False
        self._pending = False  # a write inside the open transaction

    def __call__(self, execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not sql.lstrip().upper().startswith(READ_ONLY):
            if context["connection"].in_atomic_block:
                self._pending = True
            else:
                self.committed = True
        return result

    def ended(self, *, committed: bool) -> None:
        self.committed = self.committed or (committed and self._pending)
        self._pending = False


def is_blip(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)


def _close_broken() -> None:
    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()  # errors_occurred is set: broken ones close


class DatabaseBlipMiddleware(MiddlewareMixin):
    """Calls the (synchronous) view itself, to see what it commits and to retry it. Last in
    the list: every other middleware's process_view (CSRF) has passed. The token stream, an
    async view, reads only and answers its own errors: it is left alone.

    Synchronous only, on purpose: under ASGI Django then runs the whole middleware chain in
    one thread per request, instead of hopping between the event loop and a thread for
    each middleware's every method (two hops each), hops that wait on the GIL and made
    pages slow under load long before the web server was busy."""

    sync_capable = True
    async_capable = False

    def process_view(self, request, view_func, view_args, view_kwargs):
        if iscoroutinefunction(view_func):
            return None
        writes = _Writes()
        for attempt in (1, 2):
            try:
                with _Watching(writes):
                    return view_func(request, *view_args, **view_kwargs)
            except Exception as exc:
                if not is_blip(exc):
                    raise
                _close_broken()
                where = f"{request.method} {request.path}"
                if writes.committed:
                    log.warning("database blip on %s after a write: back to the page", where)
                    return _back(request)
                if attempt == 1:
                    log.warning("database blip on %s: retrying once", where)
        log.warning("database blip on %s again: answered 'try again'", where)
        response = HttpResponse(render_to_string("labeling/try_again.html"), status=503)
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response


class _Watching:
    """``writes`` watching every database alias, for the duration of a block."""

    def __init__(self, writes: _Writes):
        self._writes = writes
        self._wrappers = [conn.execute_wrapper(writes) for conn in connections.all()]

    def __enter__(self):
        for conn, wrapper in zip(connections.all(), self._wrappers, strict=True):
            wrapper.__enter__()
            commit, rollback = conn.commit, conn.rollback
            # This thread's connection object only: instance attributes, removed on exit.
            conn.commit = lambda commit=commit: (commit(), self._writes.ended(committed=True))
            conn.rollback = lambda rollback=rollback: (
                rollback(),
                self._writes.ended(committed=False),
            )

    def __exit__(self, *exc):
        for conn, wrapper in zip(connections.all(), self._wrappers, strict=True):
            conn.__dict__.pop("commit", None)
            conn.__dict__.pop("rollback", None)
            wrapper.__exit__(*exc)


def _back(request) -> HttpResponse:
    """The page the request came from (which shows what it saved), or the home page."""
    if request.headers.get("HX-Request"):
        response = HttpResponse(status=200)
        response["HX-Refresh"] = "true"
        return response
    referer = request.headers.get("Referer", "")
    safe = url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return HttpResponseRedirect(referer if safe else "/", status=303)
