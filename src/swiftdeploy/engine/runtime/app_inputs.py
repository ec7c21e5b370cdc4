"""What the app's containers get from SwiftDeploy's state directory, as a runtime hands it to its engine: the
values of the environment secrets, a keyed digest of all of them (a label: a rotated value is a new container or
task), the folders of file secrets, and the static health probe. A runtime using it has the fields `secrets`,
`secret_files` (names) and `state_dir`."""

from pathlib import Path

from ...files import install_file

HEALTH_PROBE = "health-probe"  # its name in the state directory
HEALTH_PROBE_TARGET = "/.swiftdeploy/health"  # where the app's containers have it


class AppInputs:
    def install_health_probe(self, definition: Path) -> Path | None:
        """Put the static health probe where the definition takes it from (.swiftdeploy/health-probe), when it
        names it: a bind mount of a missing file would make the engine create a directory there."""
        if HEALTH_PROBE_TARGET not in definition.read_text():
            return None
        from ..tools import health_probe_binary

        path = self.state_dir / HEALTH_PROBE
        install_file(Path(health_probe_binary()), path, mode=0o755)
        return path

    def secrets_environment(self) -> dict[str, str]:
        """What compose or `docker stack deploy` needs for the app's secrets: the environment ones' values, the digest of all of them
        (a label) and, for file secrets, their folder's digest and group, with the folder written."""
        from ...secrets import install_secret_files, secret_files_group

        values, files = self.secret_values()
        digest = self.secrets_digest((values, files)) or ""
        # TLS_GID: the group of nginx's certificate copies (certificates.install), whether or not it serves https
        env = {**values, "SWIFTDEPLOY_SECRETS_DIGEST": digest, "SWIFTDEPLOY_TLS_GID": str(secret_files_group())}
        if files:
            env["SWIFTDEPLOY_SECRETS_GID"] = str(install_secret_files(files, digest, self.state_dir))
            self.prune_secret_files(digest)
        return env

    def prune_secret_files(self, current: str | None = None) -> None:
        """Remove the secret files of values that neither the manifest's secrets now nor a container hold
        (also after the manifest dropped its secret_files)."""
        from ...secrets import RUN_SECRETS_DIR, prune_secret_files

        if not (self.state_dir / RUN_SECRETS_DIR).is_dir():
            return
        current = current or (self.secrets_digest() if self.secret_files else None)
        prune_secret_files({current, *(c.secrets_digest for c in self.containers() if c.secrets_digest)},
                           self.state_dir)

    def secret_values(self) -> tuple[dict[str, str], dict[str, str]]:
        """The values of the environment secrets and of the file secrets."""
        from ...secrets import read_all_app_secrets

        return read_all_app_secrets(self.secrets, self.secret_files, self.state_dir)

    def secrets_digest(self, values: tuple[dict, dict] | None = None) -> str | None:
        """The keyed digest of the app's secret values now (None: the app has no secrets)."""
        from ...secrets import secrets_digest

        if not self.secrets and not self.secret_files:
            return None
        env, files = self.secret_values() if values is None else values
        return secrets_digest({**env, **{f"/run/secrets/{name}": value for name, value in files.items()}},
                              self.state_dir)
