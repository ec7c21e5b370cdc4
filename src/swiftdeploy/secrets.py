"""Tokens the stack needs: generated once, mode 0600, git-ignored, never printed.

Each token lives in an env file that compose hands to one container only (`env_file`), so the app never
sees OPA's token and OPA never sees the chaos token.
"""

import os
import secrets
import stat
import tempfile
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


HISTORY_KEY = "history.key"


def ensure_history_key(directory: str | Path = SECRETS_DIR) -> bytes:
    """The key that chains the history's records; made on first use (0600), never replaced."""
    directory = Path(directory)
    path = directory / HISTORY_KEY
    if not path.exists():
        try:
            _create_history_key(path)
        except OSError as err:
            raise SecretError(f"{path}: cannot create the history key: {err.strerror}") from None
    return read_history_key(directory)


def _create_history_key(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Written whole under a temporary name, then linked into place: a writer racing us, or one killed
    # half-way, never leaves an empty or short key behind that the next reader would take as the key.
    fd, temporary = tempfile.mkstemp(prefix=".history-key-", dir=path.parent)  # mkstemp makes it 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
        os.link(temporary, path)
    except FileExistsError:
        pass  # another writer made it first: use theirs
    finally:
        os.unlink(temporary)


def read_history_key(directory: str | Path = SECRETS_DIR) -> bytes:
    """The history key in .swiftdeploy/history.key; refuses a missing, short or others-readable file."""
    path = Path(directory) / HISTORY_KEY
    try:
        mode = path.stat().st_mode
        text = path.read_bytes().decode("ascii", "replace").strip()
    except FileNotFoundError:
        raise SecretError(f"{path}: missing; the history's chain cannot be checked without the key "
                          "that wrote it") from None
    except OSError as err:
        raise SecretError(f"{path}: cannot read the history key: {err.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(f"{path}: readable by others (mode {stat.S_IMODE(mode):o}); run `chmod 600 {path}`")
    if len(text) != 64 or not all(c in "0123456789abcdef" for c in text):
        raise SecretError(f"{path}: not a history key (64 hex digits); restore the one that wrote the history")
    return bytes.fromhex(text)


APP_SECRETS_DIR = "secrets"
SECRETS_KEY = "secrets.key"


def secrets_digest(values: dict[str, str], directory: str | Path = SECRETS_DIR) -> str:
    """A digest of the secret values, keyed with .swiftdeploy/secrets.key (made once, 0600), so the label
    that carries it says whether the values changed and nothing that could be guessed back from it."""
    import hashlib
    import hmac
    import json

    path = Path(directory) / SECRETS_KEY
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32) + "\n")
    key = path.read_text().strip().encode()
    return hmac.new(key, json.dumps(sorted(values.items())).encode(), hashlib.sha256).hexdigest()[:16]


def read_app_secrets(names, directory: str | Path = SECRETS_DIR, key: str = "services/secrets") -> dict[str, str]:
    """The value of each of the app's secrets (services.secrets): .swiftdeploy/secrets/<NAME>, which must be
    the user's alone (0600 or stricter). One trailing newline is not part of the value."""
    values = {}
    for name in names:
        path = Path(directory) / APP_SECRETS_DIR / name
        try:
            mode = path.stat().st_mode
            text = path.read_text()
        except FileNotFoundError:
            raise SecretError(f"{key}: {name}: {path} is missing; create it with its value "
                              f"(umask 077; printf %s VALUE > {path})") from None
        except (OSError, UnicodeDecodeError) as err:
            raise SecretError(f"{key}: {name}: cannot read {path}: "
                              f"{getattr(err, 'strerror', None) or 'not UTF-8 text'}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SecretError(f"{key}: {name}: {path} is readable by others (mode {stat.S_IMODE(mode):o}); "
                              f"run `chmod 600 {path}`")
        value = text[:-1] if text.endswith("\n") else text
        if not value or "\0" in value:
            raise SecretError(f"{key}: {name}: {path} is empty or holds a NUL byte")
        values[name] = value
    return values


def read_all_app_secrets(secrets, secret_files, directory: str | Path = SECRETS_DIR) -> tuple[dict, dict]:
    """The values of the app's environment secrets and of its file secrets (services.secret_files)."""
    return read_app_secrets(secrets, directory), read_app_secrets(secret_files, directory, "services/secret_files")


RUN_SECRETS_DIR = "run-secrets"
SECRETS_GROUP = 10990  # the group a root operator gives the secret files; the app's containers join it


def secret_files_group() -> int:
    """The group the app's secret files belong to: ours when we are not root (we cannot give another)."""
    return SECRETS_GROUP if os.geteuid() == 0 else os.getgid()


def install_secret_files(values: dict[str, str], digest: str, directory: str | Path = SECRETS_DIR,
                         base: str = RUN_SECRETS_DIR) -> int:
    """The secret files of one set of values, in .swiftdeploy/run-secrets/<digest>/ (mounted at /run/secrets):
    written once into a temporary folder and renamed into place, never changed after, so a container keeps
    the values it started with. Files 0440 and the folder 0750 in secret_files_group(), which the containers
    join. Returns the group."""
    import shutil

    base = Path(directory) / base
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    group, folder = secret_files_group(), base / digest
    if not (folder / ".complete").exists():
        partial = base / f".{digest}.{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(mode=0o700)
        for name, value in values.items():
            _write_private(partial / name, value, group)
        (partial / ".complete").touch(mode=0o400)
        os.chown(partial, -1, group)
        os.chmod(partial, 0o750)
        shutil.rmtree(folder, ignore_errors=True)  # an empty one the engine made for a missing bind source
        os.rename(partial, folder)
    return group


def prune_secret_files(keep, directory: str | Path = SECRETS_DIR, base: str = RUN_SECRETS_DIR) -> None:
    """Remove the secret folders of values no container uses any more (`keep`: the digests still in use)."""
    import shutil

    base, keep = Path(directory) / base, set(keep)
    if base.is_dir():
        for other in base.iterdir():
            if other.name not in keep:
                shutil.rmtree(other, ignore_errors=True)


def _write_private(path: Path, value: str, group: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    try:
        os.write(fd, value.encode())
        os.fchown(fd, -1, group)
        os.fchmod(fd, 0o440)
    finally:
        os.close(fd)
