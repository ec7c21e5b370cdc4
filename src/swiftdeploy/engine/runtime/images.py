"""The app images on the engine the CLI talks to: facts, builds and release tags. Every runtime uses them."""

from pathlib import Path

from .. import api as engine
from ...model.manifest import BUNDLED
from ...state import APP_HASH_LABEL, ImageFact


def repository_digest(reference: str, image: dict | None) -> str | None:
    """`repository@sha256:...` of an image the engine pulled for `reference` (from its RepoDigests); None for one
    built or loaded here, or no image."""
    repository = engine.split_reference(reference)[0]
    return next((d for d in (image or {}).get("RepoDigests") or [] if d.startswith(repository + "@")), None)


class EngineImages:
    def images(self, references) -> dict[str, ImageFact]:
        facts = {}
        for reference in dict.fromkeys(references):
            image = engine.inspect_image(reference)
            config = (image or {}).get("Config") or {}
            labels = config.get("Labels") or {}
            facts[reference] = ImageFact(id=image["Id"] if image else None, app_hash=labels.get(APP_HASH_LABEL),
                                         user=config.get("User"), digest=repository_digest(reference, image))
        return facts

    def build(self, root: Path, references, source_hash: str, source=BUNDLED) -> str:
        from ..build import build

        return build(root, references, source_hash, source)

    def pull(self, references, credentials_dir: Path = Path(".swiftdeploy/registries")) -> None:
        """Pull each image, with the credentials kept for its registry (else the engine client's login)."""
        from ..registry import credentials

        for reference in references:
            engine.pull_image(reference, credentials(reference, credentials_dir))

    def policy_problem(self, opa_image: str, folder: Path) -> str | None:
        """What `opa check --bundle` in OPA's own image says of a policy snapshot: None when it compiles."""
        status, output = engine.run_once(opa_image, ["check", "--bundle", "/policies"],
                                         {str(Path(folder).resolve()): "/policies"}, network_mode="none")
        if status == 0:
            return None
        lines = [line.strip() for line in output.splitlines() if line.strip()]
        first = next((line for line in lines if "/policies/" in line), lines[0] if lines else f"exit {status}")
        return first.split("occurred: ", 1)[-1].replace("/policies/", "policies/")[:300]

    def tag(self, image_id: str, reference: str) -> None:
        engine.tag_image(image_id, *engine.split_reference(reference))

    def untag(self, reference: str) -> None:
        engine.untag_image(reference)
