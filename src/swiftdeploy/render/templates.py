"""Pure rendering: (manifest slice, template) -> text.

Each generated file sees only the manifest fields listed for it in OUTPUTS, so the dependency the task
graph records (that slice) is exactly what the output can depend on: a template that reaches for
anything else fails with StrictUndefined instead of going silently stale.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SwiftDeployError

if TYPE_CHECKING:
    from ..model.manifest import Manifest

GENERATION_MARK = "@@GENERATION@@"
SPEC_MARK = "@@SPEC:{}@@"
SPEC_LABEL = "io.swiftdeploy.spec"

# generated file -> (template, manifest fields it reads)
OUTPUTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nginx.conf": ("nginx.conf.j2", (
        "services.name", "services.port", "services.mode", "services.canary.weight", "nginx.port",
        "nginx.proxy_timeout", "nginx.contact", "nginx.max_body", "nginx.websocket_paths", "nginx.websocket_idle_seconds",
        "nginx.tls")),
    "docker-compose.yml": ("docker-compose.yml.j2", (
        "project", "services", "nginx.image", "nginx.port", "nginx.tls", "network", "opa", "log_volume", "logs",
        "prometheus")),
    "opa-config.yaml": ("opa-config.yaml.j2", ("project", "services.name")),
    # for the stack's Prometheus (a prometheus: block) or the user's own
    "prometheus.yml": ("prometheus.yml.j2", (
        "project", "services.name", "services.port", "prometheus.scrape_interval_seconds")),
    "prometheus-rules.yml": ("prometheus-rules.yml.j2", (
        "services.canary.window_seconds", "prometheus.scrape_interval_seconds")),
    "grafana-dashboard.json": ("grafana-dashboard.json.j2", ("project", "services.canary.window_seconds")),
    # runtime: swarm only (see used_by)
    "stack.yml": ("stack.yml.j2", (
        "project", "runtime", "swarm", "services", "nginx.image", "nginx.port", "nginx.tls", "network", "opa",
        "log_volume", "logs")),
}
# templates an output's template includes: a change to one re-renders that output too
INCLUDES: dict[str, tuple[str, ...]] = {
    "docker-compose.yml": ("nginx-logs.sh.j2", "nginx-stop.sh.j2"),
    "stack.yml": ("nginx-logs.sh.j2", "nginx-stop.sh.j2"),
}
SWARM_ONLY = ("stack.yml",)
# outputs that also read the policy's revision (OPA mounts that revision's snapshot) and opa-config.yaml's
# digest: their task depends on the policy files and that template as well
POLICY_READERS = ("docker-compose.yml", "stack.yml")


def used_by(output: str, manifest: Manifest) -> bool:
    """Whether the manifest's runtime reads this output (stack.yml exists only for runtime: swarm)."""
    return output not in SWARM_ONLY or manifest.runtime == "swarm"


def outputs_for(manifest: Manifest) -> list[str]:
    return [output for output in OUTPUTS if used_by(output, manifest)]


def fields_of(output: str, manifest: Manifest) -> tuple[str, ...]:
    """The manifest fields an output depends on: only the runtime, for a file this runtime does not use."""
    return OUTPUTS[output][1] if used_by(output, manifest) else ("runtime",)


class RenderError(SwiftDeployError):
    pass


def manifest_slice(manifest: Manifest, fields: tuple[str, ...]) -> dict:
    """A nested dict holding only the given dotted fields of the manifest."""
    full, picked = asdict(manifest), {}
    for dotted in fields:
        keys = dotted.split(".")
        source, target = full, picked
        for key in keys[:-1]:
            source, target = source[key], target.setdefault(key, {})
        target[keys[-1]] = source[keys[-1]]
    return picked


def render(output: str, manifest: Manifest, templates_dir: str | Path = "templates", policy_revision: str = "") -> str:
    """The text of generated/<output> for this manifest (and, for POLICY_READERS, the policy's revision)."""
    import jinja2  # imported here so that `doit list` (which reads OUTPUTS) stays fast

    template_name, fields = OUTPUTS[output]
    context = manifest_slice(manifest, fields)
    if output in POLICY_READERS:
        # OPA reads opa-config.yaml only at its start: a new one is a new OPA, like a new policy
        config = render("opa-config.yaml", manifest, templates_dir)
        context["policy"] = {"revision": policy_revision or "none",
                             "config": hashlib.sha256(config.encode()).hexdigest()[:12]}
    try:
        text = _environment(str(templates_dir)).get_template(template_name).render(**context)
    except jinja2.TemplateNotFound:
        raise RenderError(f"{templates_dir}/{template_name}: template not found") from None
    except jinja2.UndefinedError as err:
        raise RenderError(f"{templates_dir}/{template_name}: {err.message} (not in the manifest fields "
                          f"this file may read; see OUTPUTS in render.py)") from None
    except jinja2.TemplateSyntaxError as err:
        raise RenderError(f"{templates_dir}/{template_name}:{err.lineno}: {err.message}") from None
    return _stamp_specs(_stamp_generation(text))


@lru_cache(maxsize=8)
def _environment(templates_dir: str):
    """One jinja2 environment per templates folder: each template is compiled once per process (the
    loader still notices a template that changed on disk), and its bytecode is kept in the user's temp
    folder, keyed by the template's checksum, for the next process (a no-change deploy renders to compare)."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        bytecode_cache=jinja2.FileSystemBytecodeCache(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["json"] = _json_string
    return env


def generation_of(text: str) -> str:
    """The config generation an nginx.conf announces (its X-Config-Generation header value)."""
    for line in text.splitlines():
        if "X-Config-Generation" in line:
            return line.split()[-2].strip("'\";")
    raise RenderError("nginx.conf carries no X-Config-Generation header")


def _stamp_generation(text: str) -> str:
    if GENERATION_MARK not in text:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return text.replace(GENERATION_MARK, digest)


def service_spec(compose: dict, service: str) -> str:
    """A hash of what a compose service runs: its definition and the networks and volumes it uses.

    depends_on is left out (as Compose's own config hash does): nginx waits for the canary only in canary
    mode, and a mode change must not count as a new nginx. So is the spec label itself.
    """
    definition = dict(compose["services"][service])
    definition.pop("depends_on", None)
    definition["labels"] = {k: v for k, v in (definition.get("labels") or {}).items() if k != SPEC_LABEL}
    named_volumes = [name for v in definition.get("volumes", []) if (name := _named_volume(v))]
    used = {"service": definition,
            "networks": {n: compose.get("networks", {}).get(n) for n in definition.get("networks", [])},
            "volumes": {v: compose.get("volumes", {}).get(v) for v in named_volumes}}
    return hashlib.sha256(json.dumps(used, sort_keys=True).encode()).hexdigest()[:12]


def _named_volume(volume) -> str | None:
    """The named volume a service's volume entry mounts (short "name:/path" or long form), or None."""
    if isinstance(volume, dict):
        return volume.get("source") if volume.get("type") == "volume" else None
    return None if volume.startswith((".", "/")) else volume.split(":")[0]


def _stamp_specs(text: str) -> str:
    if "@@SPEC:" not in text:
        return text
    compose = load_yaml(text)
    for service in compose.get("services", {}):
        text = text.replace(SPEC_MARK.format(service), service_spec(compose, service))
    return text


def load_yaml(text: str):
    """yaml.safe_load with libyaml when it is there (ten times faster than the pure-Python parser)."""
    import yaml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - a safe loader


def _json_string(value) -> str:
    """A value as a double-quoted string, safe inside YAML and nginx strings."""
    return json.dumps(str(value))
