"""One deployed stack: where its files are, how to reach its parts. Every operation starts here."""

from dataclasses import dataclass, field
from pathlib import Path

from .history import History
from .manifest import Manifest, load_manifest
from .runtime.compose import ComposeRuntime

MANIFEST = "manifest.yaml"
GENERATED = "generated"


@dataclass
class Stack:
    root: Path
    manifest: Manifest
    history: History = field(init=False)

    def __post_init__(self):
        self.history = History(self.root / "reports" / "history.jsonl")

    @classmethod
    def load(cls, root: str | Path = ".") -> "Stack":
        root = Path(root)
        return cls(root, load_manifest(root / MANIFEST))

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def generated(self) -> Path:
        return self.root / GENERATED

    @property
    def runtime(self) -> ComposeRuntime:
        return ComposeRuntime(self.generated / "docker-compose.yml", self.manifest.project)

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.manifest.nginx.port}"

    @property
    def opa_url(self) -> str:
        return f"http://127.0.0.1:{self.manifest.opa.port}"

    def service(self, track: str) -> str:
        return f"{self.manifest.services.name}-{track}"

    def tracks(self, manifest: Manifest | None = None) -> list[str]:
        """The tracks a manifest asks for: stable, plus canary in canary mode."""
        manifest = manifest or self.manifest
        return ["stable", "canary"] if manifest.services.mode == "canary" else ["stable"]

    def opa(self):
        from .policy import OpaClient
        from .secrets import read_token

        return OpaClient(self.opa_url, read_token("opa.env", self.root / ".swiftdeploy"))

    def chaos_token(self) -> str:
        from .secrets import read_token

        return read_token("app.env", self.root / ".swiftdeploy")
