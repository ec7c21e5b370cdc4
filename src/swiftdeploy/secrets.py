"""Tokens the stack needs: generated once, mode 0600, git-ignored, never printed.

Each token lives in an env file that compose hands to one container only (`env_file`), so the app never
sees OPA's token and OPA never sees the chaos token.
"""

import os
import secrets
import stat
from pathlib import Path

from .errors import SwiftDeployError

SECRETS_DIR = Path(".swiftdeploy")
TOKENS = {"opa.env": "OPA_TOKEN", "app.env": "CHAOS_TOKEN"}


class SecretError(SwiftDeployError):
    pass


def ensure_secrets(directory: str | Path = SECRETS_DIR) -> list[Path]:
    """Create any missing token file; never overwrite one. Return the files created."""
    directory = Path(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    created = []
    for filename, variable in TOKENS.items():
        path = directory / filename
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{variable}={secrets.token_hex(32)}\n")
        created.append(path)
    return created


def read_token(filename: str, directory: str | Path = SECRETS_DIR) -> str:
    """The token held in .swiftdeploy/<filename>; refuses a file others can read."""
    path = Path(directory) / filename
    variable = TOKENS[filename]
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except FileNotFoundError:
        raise SecretError(f"{path}: missing; run `doit init` to generate the tokens") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(f"{path}: readable by others (mode {stat.S_IMODE(mode):o}); run `chmod 600 {path}`")
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == variable and value.strip():
            return value.strip()
    raise SecretError(f"{path}: no {variable}=... line; delete the file and run `doit init` to regenerate it")
