"""The ASGI application: what the production server (uvicorn) serves. ASGI, not WSGI,
because the token stream is a long-lived async response (server-sent events)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hhh.settings")
application = get_asgi_application()
