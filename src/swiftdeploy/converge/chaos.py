"""Chaos is an operator action: sent through the public port to the canary, with the chaos token."""

import requests

from ..errors import SwiftDeployError
from .proxy import own_https
from .stack import Stack


class ChaosError(SwiftDeployError):
    pass


def body(mode: str, rate: float | None, duration: float | None) -> dict:
    """The /chaos request body; the app validates the values and names the field it refuses."""
    if mode == "error":
        if rate is None:
            raise ChaosError("chaos error needs --rate (a fraction 0-1 of requests to answer 500)")
        return {"mode": "error", "rate": rate}
    if mode == "slow":
        if duration is None:
            raise ChaosError("chaos slow needs --duration (seconds to sleep before answering)")
        return {"mode": "slow", "duration": duration}
    if mode == "recover":
        return {"mode": "recover"}
    raise ChaosError(f"chaos needs --mode slow, error or recover (got {mode!r})")


def inject(stack: Stack, mode: str, rate: float | None = None, duration: float | None = None) -> str:
    if not stack.manifest.services.bundled:
        raise ChaosError("chaos drives the bundled app's /chaos, which your own image does not serve; test a "
                         "failing canary with a canary image that fails, or stop its container (docker stop) "
                         "to see nginx fail over")
    payload = body(mode, rate, duration)
    if hasattr(stack.runtime, "post_to_every_task"):  # several tasks per track: nginx would reach only one
        return _inject_every_task(stack, mode, payload)
    url = f"{stack.public_url}/chaos"
    try:
        answer = requests.post(url, json=payload, headers={"X-Chaos-Token": stack.chaos_token()}, timeout=10,
                               verify=not own_https(url))
    except requests.RequestException as err:
        raise ChaosError(f"no answer from {url}: {type(err).__name__}") from None
    try:
        said = answer.json()
    except ValueError:
        said = {"error": answer.text.strip()[:200]}
    fields = {k: v for k, v in payload.items() if k != "mode"}
    outcome = "ok" if answer.status_code == 200 else "failed"
    stack.history.append("chaos", outcome=outcome, mode=mode, status_code=answer.status_code, **fields)
    if answer.status_code != 200:
        raise ChaosError(f"chaos {mode} refused: HTTP {answer.status_code}: {said.get('error', said)}")
    return ", ".join(f"{k}={v}" for k, v in said.items()) if isinstance(said, dict) else str(said)


def _inject_every_task(stack: Stack, mode: str, payload: dict) -> str:
    track = "canary" if stack.manifest.services.mode == "canary" else "stable"  # where nginx sends /chaos
    answers = stack.runtime.post_to_every_task(stack.service(track), "/chaos", payload)
    refused = [(address, status, text) for address, status, text in answers if status != 200]
    fields = {k: v for k, v in payload.items() if k != "mode"}
    status = refused[0][1] if refused else (200 if answers else 503)
    stack.history.append("chaos", outcome="failed" if refused or not answers else "ok", mode=mode,
                         status_code=status, **fields)
    if not answers:
        raise ChaosError(f"chaos {mode}: no healthy task of the {track} track answered")
    if refused:
        address, status, text = refused[0]
        raise ChaosError(f"chaos {mode} refused by the {track} task at {address}: HTTP {status}: {text.strip()[:200]}")
    return f"{mode} on {len(answers)} {track} task{'s' if len(answers) != 1 else ''}: {payload}"
