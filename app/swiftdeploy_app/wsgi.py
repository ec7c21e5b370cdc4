"""WSGI entry point for gunicorn: ``swiftdeploy_app.wsgi:app``."""

import sys

from . import create_app
from .settings import SettingsError

try:
    app = create_app()
except SettingsError as err:
    print(f"swiftdeploy-app: {err}", file=sys.stderr, flush=True)
    sys.exit(3)  # gunicorn's "worker failed to boot": the arbiter stops instead of respawning
