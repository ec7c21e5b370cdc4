"""Ask OPA for a gate decision (SPEC P-1, P-3, P-6).

This module only carries questions and answers: every threshold, comparison and default lives in Rego.
Each way of not getting a well-formed decision raises its own `PolicyUnavailable` subclass whose str() is
one line naming the URL (never the token), so a gate that asked cannot go ahead: it fails closed.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
import urllib3

from ..errors import SwiftDeployError

_DOMAIN = re.compile(r"[a-z][a-z0-9_]*")
_TOKEN = re.compile(r"[!-~]+")  # printable ASCII without spaces: safe in a header


class PolicyUnavailable(SwiftDeployError):
    """OPA gave no usable decision; the gate that asked must fail closed."""


class OpaRefused(PolicyUnavailable):
    """No connection (refused, host unknown, or dropped before an answer)."""


class OpaTimeout(PolicyUnavailable):
    """No connection or no answer within the timeout."""


class OpaHttpError(PolicyUnavailable):
    """A non-2xx answer (401: wrong or missing token); `.status` holds the code."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class OpaNotJson(PolicyUnavailable):
    """The answer was not a JSON object."""


class OpaUndefinedDecision(PolicyUnavailable):
    """200 without `result`: no such decision (policy or package not loaded)."""


class OpaMalformedDecision(PolicyUnavailable):
    """The decision was not {"allow": bool, "reasons": [str, ...]}."""


VERDICTS = ("pass", "fail", "insufficient")


@dataclass(frozen=True)
class Decision:
    allow: bool
    reasons: tuple[str, ...]
    raw: dict = field(repr=False, compare=False)  # OPA's whole answer (result; decision_id if logging is on)
    verdict: str | None = None  # the canary policy's pass | fail | insufficient; None for a domain without one
    notes: tuple[str, ...] = ()  # what the answer rests on (e.g. "stable has too few requests to compare")
    input: dict | None = field(default=None, repr=False, compare=False)  # the question it answers
    revision: str | None = field(default=None, compare=False)  # the policy revision OPA decided under (its provenance), when it names one


class OpaClient:
    """One OPA server; `decide(domain, input)` asks for data.swiftdeploy.<domain>.decision."""

    def __init__(self, base_url: str, token: str | None, timeout: tuple[float, float] = (1.0, 3.0)):
        parts = urlsplit(base_url)
        if (parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc
                or not re.fullmatch(r"[^:]+(:[0-9]{1,5})?|\[[0-9a-fA-F:.]+\](:[0-9]{1,5})?", parts.netloc)
                or parts.query or parts.fragment or parts.path.strip("/")):
            raise SwiftDeployError("OPA URL must look like http://host:port (no credentials, path or query)")
        if token is not None and not _TOKEN.fullmatch(token):
            raise SwiftDeployError("OPA token is empty or contains spaces or control characters")
        self.base_url = base_url.rstrip("/")
        self.timeout = (float(timeout[0]), float(timeout[1]))
        self._token = token
        self._session = requests.Session()
        self._session.trust_env = False  # no proxy or ~/.netrc: they could reroute the call or swap the token
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def decide(self, domain: str, input: dict) -> Decision:  # noqa: A002 (OPA's name for it)
        """OPA's answer, or a PolicyUnavailable subclass: never an allow OPA did not clearly give."""
        if not isinstance(domain, str) or not _DOMAIN.fullmatch(domain):
            raise ValueError(f"policy domain must be a lowercase identifier, not {domain!r:.60}")
        url, where = f"{self.base_url}/v1/data/swiftdeploy/{domain}/decision", f"data.swiftdeploy.{domain}.decision"
        resp = self._post(url, {"input": input}, params={"provenance": "true"})  # with the policy's revision
        try:
            body = json.loads(resp.content)
        except ValueError:
            body = None
        if not 200 <= resp.status_code < 300:
            said = body.get("message") if isinstance(body, dict) else None
            said = f": {self._scrub(said)}" if isinstance(said, str) and said.strip() else ""
            reason = self._scrub(resp.reason or "")
            raise OpaHttpError(_line(f"OPA at {url} answered HTTP {resp.status_code} {reason}{said}"), resp.status_code)
        if not isinstance(body, dict):
            kind = resp.headers.get("Content-Type") or "no content type"
            raise OpaNotJson(_line(f"OPA at {url} answered HTTP {resp.status_code} with a body that is not "
                                   f"a JSON object ({kind}, {len(resp.content)} bytes)"))
        if "result" not in body:
            raise OpaUndefinedDecision(f"OPA at {self.base_url} has no decision at {where} (policy not loaded?)")
        result = body["result"]
        allow, reasons = (result.get("allow"), result.get("reasons")) if isinstance(result, dict) else (None, None)
        if (type(allow) is not bool or not isinstance(reasons, list)
                or not all(isinstance(r, str) for r in reasons) or (allow and reasons)):
            shown = self._scrub(json.dumps(result))
            shown = shown if len(shown) <= 120 else shown[:117] + "..."
            raise OpaMalformedDecision(_line(f"OPA's {where} at {url} is not {{\"allow\": bool, \"reasons\": "
                                             f"[str], empty when allowed}}: {shown}"))
        verdict, notes = result.get("verdict"), result.get("notes", [])
        if (("verdict" in result and (verdict not in VERDICTS or allow != (verdict == "pass")))
                or not isinstance(notes, list) or not all(isinstance(n, str) for n in notes)):
            shown = self._scrub(json.dumps(result))
            shown = shown if len(shown) <= 120 else shown[:117] + "..."
            raise OpaMalformedDecision(_line(f"OPA's {where} at {url} has a verdict that is not pass|fail|insufficient "
                                             f"agreeing with allow, or notes that are not strings: {shown}"))
        return Decision(allow=allow, reasons=tuple(reasons), raw=body, verdict=verdict, notes=tuple(notes),
                        input=input, revision=_bundle_revision((body.get("provenance") or {}).get("bundles")))

    def served_revision(self) -> str | None:
        """The revision of the policy bundle OPA serves now; None when it answers none (or does not answer)."""
        try:
            resp = self._session.get(f"{self.base_url}/v1/data/system/bundles", allow_redirects=False,
                                     timeout=self.timeout)
            body = resp.json() if resp.status_code == 200 else None
        except (requests.RequestException, OSError, ValueError):
            return None
        bundles = body.get("result") if isinstance(body, dict) else None
        if not isinstance(bundles, dict):
            return None
        return _bundle_revision({name: (entry.get("manifest") if isinstance(entry, dict) else None)
                                 for name, entry in bundles.items()})

    def healthy(self) -> bool:
        """True when GET /health answers 200 within about a second; never raises."""
        try:
            resp = self._session.get(f"{self.base_url}/health", allow_redirects=False,
                                     timeout=(min(self.timeout[0], 1.0), 1.0))
        except (requests.RequestException, OSError):
            return False
        return resp.status_code == 200

    def close(self) -> None:
        self._session.close()

    def _post(self, url: str, payload: dict, params: dict | None = None) -> requests.Response:
        try:
            return self._session.post(url, json=payload, params=params, timeout=self.timeout, allow_redirects=False)
        except requests.exceptions.ConnectTimeout as exc:
            raise OpaTimeout(f"could not ask OPA at {self.base_url}: no connection within "
                             f"{self.timeout[0]:g} s") from exc
        except (requests.exceptions.Timeout, requests.exceptions.ConnectionError) as exc:
            causes = _causes(exc)
            if any(isinstance(c, ConnectionRefusedError) for c in causes):
                why = "connection refused"
            elif any(isinstance(c, socket.gaierror) for c in causes):
                why = "cannot resolve the host name"
            elif any(isinstance(c, (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError,
                                    TimeoutError)) for c in causes):
                raise OpaTimeout(f"OPA at {url} did not answer within {self.timeout[1]:g} s") from exc
            else:
                why = "the connection failed or closed before an answer"
            raise OpaRefused(f"could not ask OPA at {self.base_url}: {why}") from exc

    def _scrub(self, text: str) -> str:
        """Text that came from the server, with the token blanked out should it ever be echoed."""
        return text.replace(self._token, "<token>") if self._token else text


def _bundle_revision(bundles) -> str | None:
    """The revision of the one bundle OPA loaded ({name: {"revision": ...}}), else None."""
    if not isinstance(bundles, dict) or len(bundles) != 1:
        return None
    (entry,) = bundles.values()
    revision = entry.get("revision") if isinstance(entry, dict) else None
    return revision if isinstance(revision, str) and re.fullmatch(r"[0-9a-f]{1,64}", revision) else None


def _line(text: str) -> str:  # one line, bounded
    return " ".join(text.split())[:400]


def _causes(exc: BaseException) -> list[BaseException]:
    """exc and everything it wraps (requests and urllib3 nest the socket error in args, reason, cause)."""
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo:
        e = todo.pop()
        if isinstance(e, BaseException) and all(e is not s for s in seen):
            seen.append(e)
            todo += [e.__cause__, e.__context__, getattr(e, "reason", None), *e.args]
    return seen
