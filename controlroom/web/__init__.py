"""The web console: server-rendered pages (Jinja2 + vendored htmx), a JSON API, live feed."""
