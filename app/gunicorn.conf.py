"""gunicorn settings for the SwiftDeploy API service (SPEC A-7); see docs/CONTRACTS.md, "App", for the reasons.

Run: ``gunicorn --config /app/gunicorn.conf.py``. Reads APP_PORT (default 3000) and WORKERS ("auto",
the default: one per CPU the container may use) and checks them and MODE here, in the master, so a bad
value stops start-up with one line instead of a worker traceback. Other settings can be overridden with
GUNICORN_CMD_ARGS (e.g. "--threads 16").
"""

import os
import shutil
import sys
import tempfile
import time

# The workers' shared directory (chaos setting, metric files), fresh for each master, on tmpfs. It must be
# in the environment before anything imports prometheus_client, which picks its multiprocess mode then (so
# the names are spelled here, not imported from swiftdeploy_app).
_shared = tempfile.mkdtemp(prefix="swiftdeploy-app-", dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _shared
os.environ["SWIFTDEPLOY_APP_STARTED"] = repr(time.monotonic())

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)

from swiftdeploy_app.chaos import MAX_SLOW_SECONDS  # noqa: E402
from swiftdeploy_app.settings import SettingsError, load_settings, usable_cpus  # noqa: E402

try:
    _settings = load_settings()
except SettingsError as _err:
    print(f"swiftdeploy-app: {_err}", file=sys.stderr, flush=True)
    shutil.rmtree(_shared, ignore_errors=True)
    sys.exit(2)

wsgi_app = "swiftdeploy_app.wsgi:app"
pythonpath = _here
bind = [f"0.0.0.0:{_settings.port}"]

# Processes for the cores (one Python process runs on one at a time), threads for requests that wait
# (slow chaos). Chaos state and metrics are shared through _shared.
workers = _settings.workers or usable_cpus()
worker_class = "gthread"
threads = 8


def on_exit(server):
    shutil.rmtree(_shared, ignore_errors=True)

# A slow-chaos request sleeps up to MAX_SLOW_SECONDS: the timeout stays well above it (SPEC S6).
timeout = MAX_SLOW_SECONDS + 30
graceful_timeout = 30
# Above nginx's upstream keepalive_timeout (60 s) so gunicorn never closes a connection nginx reuses.
keepalive = 75

# Heartbeat file on tmpfs (gunicorn FAQ: fchmod on a disk-backed file can block the worker).
if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
    worker_tmp_dir = "/dev/shm"

# No control socket: it would be created under $HOME (none for the app user) and is not used.
control_socket_disable = True

proc_name = "swiftdeploy-app"
accesslog = None  # nginx writes the access log (N-4); errors and chaos events go to stderr
errorlog = "-"
loglevel = "info"
