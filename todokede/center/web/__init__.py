"""The center on the web: the ASGI app (``app.create_app``), the JSON API (``api``) and
the HTML pages, every one listed in ``routes.ROUTES`` with its handler."""
