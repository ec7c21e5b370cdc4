"""SwiftDeploy's task graph. `doit list` shows what it can do; README.md explains the flow."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "src"))  # the engine library, importable without installing the package

from tasks import *  # noqa: E402,F403 - task_* creators are the interface doit reads
from tasks.reporter import OperatorReporter  # noqa: E402

DOIT_CONFIG = {
    # sqlite3: one portable file that tolerates concurrent runs (dbm's format depends on the Python build).
    "backend": "sqlite3",
    "dep_file": os.environ.get("SWIFTDEPLOY_DOIT_DB", ".doit.db"),
    # md5 + relative paths: a database restored from a CI cache into another checkout stays valid.
    "check_file_uptodate": "md5",
    "action_string_formatting": "new",
    "minversion": "0.37.0",
    "reporter": OperatorReporter,
    "default_tasks": ["init"],
}
