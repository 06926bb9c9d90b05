"""The ASGI application: what the production server (uvicorn) serves. ASGI, not WSGI,
because the token stream is a long-lived async response (server-sent events)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hhh.settings")
# Each request runs its view in a thread of its own: on PostgreSQL they share a pool of
# connections, checked as they are handed out (hhh/settings.py). The pool also bounds a
# server's connections: requests beyond it wait their turn.
os.environ.setdefault("LAB_DB_POOL_SIZE", "10")
# A generation task is sent from a thread of its own: a paused broker holds up no page.
os.environ.setdefault("LAB_ENQUEUE_IN_BACKGROUND", "1")
application = get_asgi_application()
