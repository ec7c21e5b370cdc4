"""One deployed stack: where its files are, how to reach its parts. Every operation starts here."""

from dataclasses import dataclass, field
from pathlib import Path

from ..evidence.history import History
from ..model.manifest import Manifest, load_manifest

MANIFEST = "manifest.yaml"
GENERATED = "generated"
STATE_DIR = ".swiftdeploy"


@dataclass
class Stack:
    root: Path
    manifest: Manifest
    history: History = field(init=False)
    runtime: object = None  # ComposeRuntime or SwarmRuntime (the manifest's runtime) unless a test gives another
    proxy: object = None  # NginxProxy unless a test gives another
    opa_client: object = None  # an OpaClient for the stack's OPA unless a test gives another

    def __post_init__(self):
        kept = self.manifest.history
        self.history = History(self.root / "reports" / "history.jsonl", key_dir=self.root / STATE_DIR,
                               segment_bytes=kept.segment_mb * 2**20, keep_days=kept.keep_days)
        if self.runtime is None:
            self.runtime = self._runtime()
        if self.proxy is None:
            from .proxy import NginxProxy

            health = self.manifest.services.health
            paths = {"confirm_path": health.path, "health_path": health.path} if health else {}
            self.proxy = NginxProxy(self.runtime, self.public_url, **paths)

    def _runtime(self):
        if self.manifest.runtime == "swarm":
            from ..engine.runtime.swarm import SwarmRuntime

            return SwarmRuntime(self.generated / "stack.yml", self.manifest.project, volumes=(self.manifest.log_volume,),
                                probe_image=self.manifest.nginx.image, engines=self.manifest.swarm.engines,
                                secrets=self.manifest.services.secrets, state_dir=self.state_dir)
        from ..engine.runtime.compose import ComposeRuntime

        return ComposeRuntime(self.generated / "docker-compose.yml", self.manifest.project,
                              secrets=self.manifest.services.secrets, secret_files=self.manifest.services.secret_files,
                              state_dir=self.state_dir)

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
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def public_url(self) -> str:
        """Where SwiftDeploy itself asks nginx: its https port when it serves one (plain http redirects there)."""
        tls = self.manifest.nginx.tls
        return f"https://127.0.0.1:{tls.port}" if tls else f"http://127.0.0.1:{self.manifest.nginx.port}"

    @property
    def opa_url(self) -> str:
        return f"http://127.0.0.1:{self.manifest.opa.port}"

    def service(self, track: str) -> str:
        return f"{self.manifest.services.name}-{track}"

    def tracks(self, manifest: Manifest | None = None) -> list[str]:
        """The tracks a manifest asks for: stable, plus canary in canary mode."""
        manifest = manifest or self.manifest
        return ["stable", "canary"] if manifest.services.mode == "canary" else ["stable"]

    @property
    def policies(self) -> Path:
        return self.root / "policies"

    @property
    def policy_revision(self) -> str:
        """The revision of policies/ now: what the next deploy loads into OPA."""
        from ..render.policy import revision

        return revision(self.policies)

    def desired(self, manifest: Manifest | None = None):
        from ..certificates import resolve
        from ..render.desired import desired

        return desired(resolve(manifest or self.manifest, self.root), self.root / "templates", self.policy_revision)

    def observe(self, image_references=()):
        """What the engine and nginx say now: the stack's containers, the served config, the images."""
        from ..state import APP_TRACKS, Observed

        containers = tuple(self.runtime.containers())
        served = self.proxy.served_generation()
        ready = [c.role for c in containers if c.role in APP_TRACKS and c.ready]
        return Observed(containers=containers, served_generation=served, images=self.runtime.images(image_references),
                        unreachable=self.proxy.unreachable(ready) if served else ())

    @property
    def journal(self):
        from .journal import Journal

        return Journal(self.state_dir / "journal.jsonl")

    @property
    def releases(self):
        from .releases import Releases

        return Releases(self.state_dir / "releases.json")

    def opa(self):
        if self.opa_client is not None:
            return self.opa_client
        from ..judge.policy import OpaClient
        from ..secrets import read_token

        return OpaClient(self.opa_url, read_token("opa.env", self.state_dir))

    def chaos_token(self) -> str:
        from ..secrets import read_token

        return read_token("app.env", self.state_dir)
