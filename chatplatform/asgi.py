"""ASGI entry point: HTTP through Django, WebSocket through Channels with token auth."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatplatform.settings")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application does, with our handler

from chatplatform.api.asgi_handler import PooledThreadsASGIHandler  # noqa: E402

django_asgi_app = PooledThreadsASGIHandler()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from chatplatform.api.bodylimit import BodySizeLimit  # noqa: E402
from chatplatform.api.websocket import OriginValidator, TokenAuthMiddleware  # noqa: E402
from chatplatform.api.writebehind import lifespan  # noqa: E402
from chatplatform.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Bodies over MAX_REQUEST_BYTES are refused (413) before Django reads them. Static assets
        # (Swagger UI, ReDoc, Django admin) are served here; everything else goes to Django.
        "http": BodySizeLimit(ASGIStaticFilesHandler(django_asgi_app)),
        "websocket": OriginValidator(TokenAuthMiddleware(URLRouter(websocket_urlpatterns))),
        # Startup, and at shutdown the usage and request-log rows still held are written.
        "lifespan": lifespan,
    }
)
