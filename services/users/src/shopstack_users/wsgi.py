"""The WSGI entry point gunicorn loads: ``shopstack_users.wsgi:app``."""

from shopstack_users.main import create_app

app = create_app()
