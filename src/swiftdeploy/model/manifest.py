"""Load manifest.yaml once, validate it against the published JSON Schema, return frozen dataclasses.

No other module reads the raw YAML. Every problem is reported at once, one line each, with its path:
`nginx/port: must be 1-65535, got 70000`.
"""

import difflib
import json
from collections.abc import Hashable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from ..errors import SwiftDeployError

SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
MAX_BYTES = 256 * 1024
DEFAULT_OPA_IMAGE = "openpolicyagent/opa:1.22.3"
DEFAULT_PROMETHEUS_IMAGE = "prom/prometheus:v2.42.0"


class ManifestError(SwiftDeployError):
    """The manifest is unreadable or invalid; `problems` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


@dataclass(frozen=True)
class Build:
    """The user's own build: a context and Dockerfile (paths relative to the project root)."""
    context: str
    dockerfile: str = "Dockerfile"
    args: tuple[tuple[str, str], ...] = ()
    target: str | None = None


BUNDLED = "app"  # services.build absent: the bundled demo in app/
# where an image comes from: BUNDLED, None (used as it is: present, or pulled), or the user's Build
ImageSource = str | Build | None


@dataclass(frozen=True)
class Health:
    path: str = "/healthz"
    port: int | None = None  # None: services.port
    host: str = "localhost"
    interval_seconds: int = 2
    timeout_seconds: int = 3
    start_period_seconds: int = 30
    retries: int = 15


@dataclass(frozen=True)
class Resources:
    memory: str | None = None
    cpus: float | None = None


@dataclass(frozen=True)
class Canary:
    image: str
    version: str
    weight: int
    window_seconds: int
    steps: tuple[int, ...]  # the rollout's weights; (weight,) when the manifest gives none
    step_seconds: int
    interval_seconds: int
    failure_limit: int
    step_deadline_seconds: int
    build: ImageSource = BUNDLED


@dataclass(frozen=True)
class Services:
    name: str
    image: str
    port: int
    version: str
    mode: str
    restart_policy: str
    canary: Canary
    replicas: int = 1  # tasks per track (runtime: swarm)
    workers: int | None = None  # the bundled app's gunicorn workers; None: one per CPU of its container
    build: ImageSource = BUNDLED
    health: Health | None = None  # None: the bundled app's own in-image check
    env: tuple[tuple[str, str], ...] = ()
    secrets: tuple[str, ...] = ()  # names: each value is read from .swiftdeploy/secrets/<name> at start
    secret_files: tuple[str, ...] = ()  # names: each value is the file /run/secrets/<name> in the container
    command: tuple[str, ...] | str | None = None
    user: str | None = None  # None: the bundled app's 10001, or the user image's own USER
    allow_root: bool = False
    writable: tuple[str, ...] = ("/tmp",)
    volumes: tuple[tuple[str, str], ...] = ()
    resources: Resources = Resources()

    @property
    def bundled(self) -> bool:
        """Both tracks run the bundled demo app (its metrics, chaos, healthcheck and environment)."""
        return self.build == BUNDLED and self.canary.build == BUNDLED


LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
# where an ACME certificate is kept: live names the folder of the pair served (certificates.write_pair)
ACME_FILES = (".swiftdeploy/acme/live/cert.pem", ".swiftdeploy/acme/live/key.pem")


@dataclass(frozen=True)
class Acme:
    email: str
    directory: str = LETS_ENCRYPT
    ca_bundle: str | None = None


@dataclass(frozen=True)
class Tls:
    """HTTPS with the user's certificate files (paths relative to the manifest). `fingerprint` is the SHA-256 of
    the certificate the files hold now: empty as parsed, filled in once the files were checked
    (certificates.resolve), and what names the copy nginx serves."""
    cert: str
    key: str
    port: int = 443
    hosts: tuple[str, ...] = ()
    hsts_seconds: int = 0
    fingerprint: str = ""
    material: str = ""  # the digest of both files' bytes: the folder of nginx's copy
    not_after: str = ""
    acme: Acme | None = None  # cert and key are then ACME_FILES, which SwiftDeploy writes


@dataclass(frozen=True)
class Nginx:
    image: str
    port: int
    proxy_timeout: int
    contact: str
    max_body: str = "64k"
    websocket_paths: tuple[str, ...] = ()
    websocket_idle_seconds: int = 3600
    tls: Tls | None = None


@dataclass(frozen=True)
class Logs:
    """nginx's logs in the log volume: each rotates past max_mb, keeping `keep` rotated files."""
    max_mb: int = 50
    keep: int = 3


@dataclass(frozen=True)
class HistorySettings:
    """reports/history.jsonl: sealed into segments past segment_mb; sealed ones older than keep_days removed."""
    segment_mb: int = 16
    keep_days: int | None = None


@dataclass(frozen=True)
class Network:
    name: str
    driver_type: str


@dataclass(frozen=True)
class Opa:
    image: str
    port: int


@dataclass(frozen=True)
class Prometheus:
    enabled: bool  # the manifest has a prometheus: block, so the stack runs one
    image: str
    port: int
    scrape_interval_seconds: int


@dataclass(frozen=True)
class Swarm:
    endpoint_mode: str = "dnsrr"  # dnsrr | vip
    publish_mode: str = "host"  # host | ingress
    # Docker endpoints of the other nodes: with no registry, the images built on the manager are loaded there
    engines: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    project: str
    services: Services
    nginx: Nginx
    network: Network
    opa: Opa
    log_volume: str
    prometheus: Prometheus
    metrics_source: str  # scrape | prometheus
    runtime: str = "compose"  # compose | swarm
    swarm: Swarm = Swarm()
    logs: Logs = Logs()
    history: HistorySettings = HistorySettings()

    def section(self, *names: str) -> dict:
        """The normalised values of some top-level sections: what a generated file depends on."""
        data = asdict(self)
        return {name: data[name] for name in names}


def load_manifest(path: str | Path = "manifest.yaml") -> Manifest:
    """Read, validate and normalise a manifest; raise ManifestError listing every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(str(path), ["file not found (create it, or run from the project directory)"]) from None
    except OSError as err:
        raise ManifestError(str(path), [f"cannot read: {err.strerror}"]) from None
    return parse_manifest(raw, str(path))


def parse_manifest(raw: bytes | str, source: str = "manifest.yaml", schema_passed: bool = False) -> Manifest:
    """schema_passed: these very bytes passed the schema before (schema_pass.py), so jsonschema, the slowest
    import of the package, is not needed; every other check still runs."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")  # a lone surrogate then fails the UTF-8 check below
    if len(raw) > MAX_BYTES:
        raise ManifestError(source, [f"file is {len(raw)} bytes; a manifest is at most {MAX_BYTES}"])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ManifestError(source, [f"not UTF-8 text (byte {err.start})"]) from None
    document = _parse_yaml(text, source)
    problems = [] if schema_passed else schema_problems(document)
    if not problems:
        problems = (_alias_conflicts(document) + _schedule_problems(document) + _prometheus_problems(document)
                    + _runtime_problems(document) + _own_service_problems(document) + _tls_problems(document))
    if problems:
        raise ManifestError(source, problems)
    return _normalise(document)


class _Unreadable:
    """A scalar the loader could not construct, kept in its place so the error can name its key path."""

    def __init__(self, problem: str, mark):
        self.problem, self.mark = problem, mark

    def __str__(self) -> str:
        return f"{_place(self.mark)}: {self.problem}"


def _place(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}"


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys, aliases (an alias bomb would hang validation), values PyYAML
    cannot construct, and integers too large to print (Python refuses to print more than 4300 digits). The last
    two become _Unreadable markers, reported with their paths after the load."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.MarkedYAMLError("", None, "YAML aliases (*name) are not supported in the manifest", mark)
        return super().compose_node(parent, index)

    def construct_object(self, node, deep=False):
        try:
            value = super().construct_object(node, deep)
        except (ValueError, KeyError, AttributeError):
            # What PyYAML's scalar constructors raise on a malformed value: 2024-13-45 (read as a date),
            # `!!bool maybe`, `!!timestamp soon`, an integer of more digits than int() converts.
            kind = node.tag.rpartition(":")[2]
            marker = _Unreadable(f"cannot read {_show(node.value)} as {kind} (quote it if it is text)", node.start_mark)
            # as PyYAML would have for a value it made: a key is constructed twice (the duplicate check, then
            # the mapping), and a node left half-made reads as "unconstructable recursive" the second time
            self.recursive_objects.pop(node, None)
            self.constructed_objects[node] = marker
            return marker
        if isinstance(value, int) and value.bit_length() > 64:
            return _Unreadable(f"integer {_show(node.value)} is too large", node.start_mark)
        return value

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value if isinstance(node, yaml.MappingNode) else ():
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                break  # SafeLoader refuses it, with its place
            if key in seen:
                raise yaml.MarkedYAMLError("", None, f"duplicate key {key!r} (first on line {seen[key]})",
                                           key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _parse_yaml(text: str, source: str):
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f"{_place(mark)}: " if mark else ""
        raise ManifestError(source, [f"{where}{err.problem or err.context}"]) from None
    except yaml.YAMLError as err:
        raise ManifestError(source, [f"not valid YAML: {str(err).splitlines()[0]}"]) from None
    except RecursionError:
        raise ManifestError(source, ["nested too deeply to read"]) from None
    if unreadable := _unreadable_values(document):
        raise ManifestError(source, unreadable)
    if document is None:
        raise ManifestError(source, ["the file is empty; it needs services, nginx and network sections"])
    if not isinstance(document, dict):
        raise ManifestError(source, [f"must be a mapping of sections, got {_kind(document)}"])
    return document


def _unreadable_values(document) -> list[str]:
    """`path: line L, column C: problem` for every _Unreadable in the document (a key's own problem is given
    at the path of its mapping). Walked without recursion: the loader took nesting as deep as its stack allows."""
    problems, pending = [], [("", document)]
    while pending:
        path, node = pending.pop()
        if isinstance(node, _Unreadable):
            problems.append(f"{path}: {node}" if path else str(node))
        elif isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, _Unreadable):
                    pending.append((path, key))
                else:
                    pending.append((_join(path, _show_key(key)), value))
        elif isinstance(node, list):
            pending.extend((_join(path, str(index)), item) for index, item in enumerate(node))
    return sorted(problems)


@lru_cache(maxsize=1)
def _validator():
    import jsonschema  # imported here: it is the slowest import of the package

    schema = json.loads(SCHEMA_PATH.read_text())
    return jsonschema.Draft202012Validator(schema)


def schema_problems(document) -> list[str]:
    """Every schema violation as `path: message`, sorted by path."""
    problems = {line for error in _validator().iter_errors(document) for line in _describe(error)}
    return sorted(problems)


def _describe(error) -> list[str]:
    path = "/".join(str(p) for p in error.absolute_path)
    schema, value, kind = error.schema, error.instance, error.validator
    if kind == "required":
        missing = [k for k in error.validator_value if k not in value]
        return [f"{_join(path, key)}: is required" for key in missing]
    if kind == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        unknown = sorted(_show_key(k) for k in value if k not in known)
        lines = []
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f' (did you mean "{close[0]}"?)' if close else f" (known keys: {', '.join(known)})"
            lines.append(f"{_join(path, key)}: unknown key{hint}")
        return lines
    where = path or "(top level)"
    if kind in ("minimum", "maximum") and "minimum" in schema and "maximum" in schema:
        return [f"{where}: must be {schema['minimum']}-{schema['maximum']}, got {_show(value)}"]
    if kind == "enum" and "x-hint" in schema:
        return [f"{where}: must be {schema['x-hint']}, got {_show(value)}"]
    if kind == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        hint = ' (YAML reads unquoted yes/no/on/off as booleans: quote it)' if isinstance(value, bool) else ""
        return [f"{where}: must be one of {choices}; got {_show(value)}{hint}"]
    if kind == "type":
        wanted = error.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        article = "an" if wanted[0] in "aeiou" else "a"
        hint = f" ({schema['x-hint']})" if "x-hint" in schema else ""
        got = "null" if value is None else f"{_kind(value)} {_show(value)}"
        return [f"{where}: must be {article} {wanted}, got {got}{hint}"]
    if "x-hint" in schema:
        return [f"{where}: must be {schema['x-hint']}, got {_show(value)}"]
    return [f"{where}: {error.message}"]


def _alias_conflicts(document: dict) -> list[str]:
    problems = []
    for spellings in (_RESTART_SPELLINGS, _LOG_VOLUME_SPELLINGS):
        given = {"/".join(p): v for p in spellings if (v := _get(document, p)) is not None}
        if len(set(given.values())) > 1:
            problems.append(" and ".join(given) + ": say the same thing differently; keep one of them")
    return problems


def _schedule_problems(document: dict) -> list[str]:
    canary = _get(document, ("services", "canary")) or {}
    problems = []
    steps = canary.get("steps")
    if steps and any(later <= earlier for earlier, later in zip(steps, steps[1:])):
        problems.append(f"services/canary/steps: must rise step by step, got {_show(steps)}")
    step_seconds = canary.get("step_seconds", canary.get("window_seconds", 30))
    deadline = canary.get("step_deadline_seconds")
    if deadline is not None and deadline <= step_seconds:
        problems.append(f"services/canary/step_deadline_seconds: must be longer than step_seconds ({step_seconds}), "
                        f"got {deadline}")
    return problems


def _prometheus_problems(document: dict) -> list[str]:
    block = document.get("prometheus")
    problems = []
    if _get(document, ("metrics", "source")) == "prometheus" and block is None:
        problems.append("metrics/source: prometheus needs a prometheus: block (the stack's Prometheus to ask)")
    if block is not None:
        window = _get(document, ("services", "canary", "window_seconds")) or 30
        interval = block.get("scrape_interval_seconds", 5)
        if interval * 2 > window:
            problems.append(f"prometheus/scrape_interval_seconds: must be at most half of services/canary/"
                            f"window_seconds ({window}), so a window holds two samples; got {interval}")
    return problems


def _tls_problems(document: dict) -> list[str]:
    tls = _get(document, ("nginx", "tls"))
    if not tls:
        return []
    port = tls.get("port", 443)
    given = [key for key in ("cert", "key") if key in tls]
    if "acme" in tls and given:
        return [f"nginx/tls/{given[0]}: not with nginx/tls/acme; give your own cert and key, or acme to have "
                "SwiftDeploy obtain them"]
    if "acme" in tls and not tls.get("hosts"):
        return ["nginx/tls/hosts: is required with nginx/tls/acme (the names the certificate is for)"]
    if "acme" not in tls and len(given) < 2:
        missing = "key" if given else "cert"
        return [f"nginx/tls/{missing}: is required (or nginx/tls/acme, to have SwiftDeploy obtain the certificate)"]
    if port == document["nginx"]["port"]:
        return [f"nginx/tls/port: {port} is also nginx/port; plain http there redirects to https, so they must differ"]
    return []


def _runtime_problems(document: dict) -> list[str]:
    if document.get("runtime", "compose") != "swarm" and "swarm" in document:
        return ["swarm: needs runtime: swarm (the compose runtime has no such settings)"]
    if document.get("runtime", "compose") == "swarm":
        if "prometheus" in document:
            return ["prometheus: not supported with runtime: swarm yet (remove the block, or use runtime: compose)"]
        return []
    replicas = _get(document, ("services", "replicas"))
    if replicas not in (None, 1):
        return [f"services/replicas: {replicas} needs runtime: swarm (compose runs one container per track)"]
    return []


ROOT_USERS = ("root", "0")


def _own_service_problems(document: dict) -> list[str]:
    svc = document["services"]
    problems = []
    user = str(svc.get("user", "")).partition(":")[0]
    if user in ROOT_USERS and not svc.get("allow_root"):
        problems.append(f"services/user: {svc['user']} runs the app as root; set services/allow_root: true to accept "
                        "that (a process that breaks out of its container as root owns the host), or name a non-root uid")
    named = {"services/env": svc.get("env"), "services/volumes": svc.get("volumes"),
             "services/build/args": (svc.get("build") or {}).get("args") if isinstance(svc.get("build"), dict) else None}
    for path, mapping in named.items():
        for key in (mapping or {}):
            if not isinstance(key, str):
                problems.append(f"{path}: the key {_show(key)} is not a name (YAML reads unquoted yes/no/on/off "
                                "as booleans and digits as numbers: quote it)")
    secret_names = svc.get("secrets", [])
    for name in sorted({n for n in secret_names if secret_names.count(n) > 1}):
        problems.append(f"services/secrets: {name} is listed twice")
    file_names = svc.get("secret_files", [])
    for name in sorted({n for n in file_names if file_names.count(n) > 1}):
        problems.append(f"services/secret_files: {name} is listed twice")
    for name in sorted(set(file_names) & set(secret_names)):
        problems.append(f"services/secret_files/{name}: is also in services/secrets; a secret reaches the app one way")
    if file_names and document.get("runtime") == "swarm":
        problems.append("services/secret_files: runtime: swarm does not mount secret files yet; use services/secrets "
                        "(the environment) or runtime: compose")
    for name in sorted(set(secret_names) & set(svc.get("env", {}))):
        problems.append(f"services/env/{name}: is also a secret; keep it in one of env and secrets")
    bundled = svc.get("build", BUNDLED) == BUNDLED and (svc.get("canary") or {}).get("build", svc.get("build", BUNDLED)) == BUNDLED
    if "workers" in svc and not bundled:
        problems.append("services/workers: sets the bundled app's gunicorn workers; your own image runs its own "
                        "command (give its server's worker setting in services/command or services/env)")
    source = _get(document, ("metrics", "source"))
    if source in ("scrape", "prometheus") and not bundled:
        problems.append(f"metrics/source: {source} reads the bundled app's own metrics; your own image is judged "
                        "from nginx's request log (source: nginx, the default for it)")
    if svc.get("volumes") and document.get("runtime") == "swarm":
        problems.append("services/volumes: a named volume is local to each swarm node, so tasks on different nodes "
                        "would see different data; use runtime: compose, or storage outside the stack")
    ws = _get(document, ("nginx", "websocket")) or {}
    if ws.get("idle_timeout_seconds") is not None and not ws.get("paths"):
        problems.append("nginx/websocket/paths: is required")
    return problems


_RESTART_SPELLINGS = (("services", "restart_policy"), ("services", "restart"))
_LOG_VOLUME_SPELLINGS = (("volumes", "logs"), ("services", "log_volume"), ("logs", "volume_name"))


def _first(document: dict, spellings, default):
    for path in spellings:
        value = _get(document, path)
        if value is not None:
            return value
    return default


def _normalise(doc: dict) -> Manifest:
    svc, ngx, opa, prom = doc["services"], doc["nginx"], doc.get("opa", {}), doc.get("prometheus") or {}
    canary = svc.get("canary", {})
    bundled = svc.get("build", BUNDLED) == BUNDLED and canary.get("build", svc.get("build", BUNDLED)) == BUNDLED
    project = doc.get("project", "swiftdeploy")
    timeout = ngx.get("proxy_timeout", 30)
    return Manifest(
        project=project,
        services=Services(
            name=svc.get("name", "app"),
            image=svc["image"],
            port=svc["port"],
            version=svc["version"],
            mode=svc["mode"],
            restart_policy=_first(doc, _RESTART_SPELLINGS, "unless-stopped"),
            replicas=svc.get("replicas", 1),
            workers=None if svc.get("workers", "auto") == "auto" else svc["workers"],
            canary=Canary(
                image=canary.get("image", svc["image"]),
                version=canary.get("version", svc["version"]),
                weight=canary.get("weight", 100),
                window_seconds=(window := canary.get("window_seconds", 30)),
                steps=tuple(canary.get("steps") or (canary.get("weight", 100),)),
                step_seconds=(step := canary.get("step_seconds", window)),
                interval_seconds=canary.get("interval_seconds", 10),
                failure_limit=canary.get("failure_limit", 1),
                step_deadline_seconds=canary.get("step_deadline_seconds", step + 120),
                build=_source(canary.get("build", svc.get("build", BUNDLED))),
            ),
            build=_source(svc.get("build", BUNDLED)),
            health=Health(**svc["health"]) if "health" in svc else (None if bundled else Health()),
            env=tuple((name, _text(value)) for name, value in svc.get("env", {}).items()),
            secrets=tuple(svc.get("secrets", ())),
            secret_files=tuple(svc.get("secret_files", ())),
            command=(svc["command"] if isinstance(svc.get("command"), str) else
                     tuple(svc["command"]) if "command" in svc else None),
            user=svc.get("user"),
            allow_root=svc.get("allow_root", False),
            writable=tuple(svc.get("writable", ("/tmp",))),
            volumes=tuple(svc.get("volumes", {}).items()),
            resources=Resources(**svc.get("resources", {})),
        ),
        nginx=Nginx(
            image=ngx["image"],
            port=ngx["port"],
            proxy_timeout=int(str(timeout).rstrip("s")),
            contact=ngx.get("contact", "ops@example.com"),
            max_body=ngx.get("max_body", "64k"),
            websocket_paths=tuple((ngx.get("websocket") or {}).get("paths", ())),
            websocket_idle_seconds=(ngx.get("websocket") or {}).get("idle_timeout_seconds", 3600),
            tls=_tls(ngx["tls"]) if "tls" in ngx else None,
        ),
        network=Network(name=doc["network"]["name"], driver_type=doc["network"]["driver_type"]),
        opa=Opa(image=opa.get("image", DEFAULT_OPA_IMAGE), port=opa.get("port", 8181)),
        log_volume=_first(doc, _LOG_VOLUME_SPELLINGS, f"{project}-logs"),
        prometheus=Prometheus(enabled="prometheus" in doc, image=prom.get("image", DEFAULT_PROMETHEUS_IMAGE),
                              port=prom.get("port", 9090),
                              scrape_interval_seconds=prom.get("scrape_interval_seconds", 5)),
        metrics_source=(doc.get("metrics") or {}).get("source", "scrape" if bundled else "nginx"),
        runtime=doc.get("runtime", "compose"),
        swarm=_swarm(doc.get("swarm") or {}),
        logs=Logs(**{k: v for k, v in (doc.get("logs") or {}).items() if k in ("max_mb", "keep")}),
        history=HistorySettings(**(doc.get("history") or {})),
    )


def _tls(block: dict) -> Tls:
    acme = Acme(**block["acme"]) if "acme" in block else None
    cert, key = ACME_FILES if acme else (block["cert"], block["key"])
    return Tls(cert=cert, key=key, port=block.get("port", 443), hosts=tuple(block.get("hosts", ())),
               hsts_seconds=block.get("hsts_seconds", 0), acme=acme)


def _source(build) -> ImageSource:
    if build is False:
        return None
    if isinstance(build, dict):
        return Build(context=build["context"], dockerfile=build.get("dockerfile", "Dockerfile"),
                     args=tuple((k, _text(v)) for k, v in build.get("args", {}).items()), target=build.get("target"))
    return BUNDLED


def _text(value) -> str:
    """A plain YAML value as the text a program reads from its environment (true, not True)."""
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _swarm(block: dict) -> Swarm:
    return Swarm(**{**block, "engines": tuple(block.get("engines", ()))})


def _get(document: dict, path: tuple):
    node = document
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def _join(path: str, key: str) -> str:
    return f"{path}/{key}" if path else key


def _kind(value) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping",
            type(None): "null"}.get(type(value), type(value).__name__)


def _show_key(key) -> str:
    """A key as written when it reads as one plain word; else quoted, so that a message stays on one line."""
    if isinstance(key, str) and key.isprintable() and key and " " not in key:
        return key
    return _show(key)


def _show(value) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
