"""Test and benchmark support: raw HTTP calls to a launched app, as any client (or attacker) can make them.

``join`` queues one event the way the page does (``POST /gradio_api/queue/join``) and ``outcome`` reads its result
from the session's event stream, so tests see exactly the refusals and errors an HTTP client sees.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image


@dataclass
class Reply:
    """What a client got: the HTTP status of the join, and the event's outcome (or the refusal)."""

    status: int
    ok: bool
    message: str  # the refusal or error sentence ("" on success)
    data: Any = None


def session() -> str:
    return uuid.uuid4().hex[:12]


def fn_index(demo: Any, api_name: str) -> int:
    return next(index for index, fn in demo.fns.items() if fn.api_name == api_name)


def data_url(image: Image.Image | bytes, fmt: str = "PNG") -> str:
    if isinstance(image, Image.Image):
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        image = buffer.getvalue()
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(image).decode()


def photo(url: str | None = None, path: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"meta": {"_type": "gradio.FileData"}}
    if url is not None:
        payload["url"] = url
    if path is not None:
        payload["path"] = path
    return payload


def analyze_data(image: dict[str, Any], model: str = "alpha", method: str = "gradcam", **changes: Any) -> list[Any]:
    """The 9 inputs of /analyze (photo, model, method, target, layer, opacity, block, compare, theme)."""
    values = {"target": "", "layer": "", "opacity": 0.5, "block": "paper", "compare": "top", "theme": "light",
              **changes}
    return [image, model, method, values["target"], values["layer"], values["opacity"], values["block"],
            values["compare"], values["theme"]]


def _message(detail: Any) -> str:
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return str(detail[0].get("message", ""))
    return str(detail)


def join(url: str, index: int, data: list[Any], session_hash: str, *, trigger_id: int | None = None,
         event_data: Any = None, timeout: float = 30, headers: dict[str, str] | None = None) -> Reply | None:
    """Queue one event; a Reply when it was refused, None when it was accepted (read it with ``outcome``).
    ``headers``: e.g. a browser's ``Accept-Language`` (the page's language)."""
    body = {"data": data, "fn_index": index, "session_hash": session_hash, "trigger_id": trigger_id,
            "event_data": event_data}
    response = httpx.post(url.rstrip("/") + "/gradio_api/queue/join", json=body, timeout=timeout, headers=headers)
    if response.status_code == 200:
        return None
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text
    return Reply(response.status_code, False, _message(detail))


def outcome(url: str, session_hash: str, *, timeout: float = 300) -> Reply:
    """The first completed event of ``session_hash`` (one event per session at a time)."""
    with httpx.stream("GET", url.rstrip("/") + f"/gradio_api/queue/data?session_hash={session_hash}",
                      timeout=timeout) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed":
                output = message.get("output") or {}
                if message.get("success"):
                    return Reply(200, True, "", output.get("data"))
                return Reply(200, False, str(output.get("error") or ""))
    return Reply(200, False, "the event stream ended without a result")


def call(url: str, index: int, data: list[Any], session_hash: str | None = None, **kwargs: Any) -> Reply:
    """``join`` then ``outcome``."""
    session_hash = session_hash or session()
    refused = join(url, index, data, session_hash, **kwargs)
    return refused or outcome(url, session_hash)
