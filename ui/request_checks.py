"""A sentence for every bad input: raw request values checked before they are queued, and the analysis options
checked by the handlers; plus the photo input's preprocessing (uploads and data URLs get the same checks)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gradio as gr

from senet.image_io import ImageRejected, check_header, read_data_url

from .refusals import refuse


def _text_or_empty(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise refuse(f"The {name} must be given as text (a name from the list), not {type(value).__name__} "
                     f"{_short(value)}.")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def opacity_value(opacity: Any) -> float:
    """The heatmap opacity as a float in [0, 1], or a sentence saying what is wrong."""
    if isinstance(opacity, bool) or not isinstance(opacity, int | float) or not math.isfinite(opacity) \
            or not 0 <= opacity <= 1:
        raise refuse(f"The opacity must be a number from 0 to 1, not {_short(opacity)}.")
    return float(opacity)


def check_options(method: Any, target: Any, layer: Any, opacity: Any, block: Any, compare: Any, theme: Any) -> None:
    """Types and simple ranges of the analysis options (names are then checked against the model).

    Raises:
        gr.Error: one sentence naming the option and what it must be.
    """
    for value, name in ((method, "CAM method"), (target, "class to explain"), (layer, "CAM layer"),
                        (block, "SE block")):
        _text_or_empty(value, name)
    opacity_value(opacity)
    if compare not in (None, "", "top", "all", "none"):
        raise refuse(f"The comparison must be \"top\", \"all\" or \"none\", not {_short(compare)}.")
    if theme not in (None, "", "light", "dark"):
        raise refuse(f"The chart theme must be \"light\" or \"dark\", not {_short(theme)}.")


def channel_index(result: Any, block: Any, channel: Any) -> tuple[str, int]:
    """The SE block and channel of a drill-down request, checked against the session's last analysis."""
    names = list(result.analysis.excitations)
    if not isinstance(block, str) or block not in names:
        raise refuse(f"Unknown SE block {_short(block)}; this model's blocks are {names[0]} to {names[-1]}.")
    count = len(result.analysis.excitations[block])
    if isinstance(channel, str) and channel.strip().isdigit():
        channel = int(channel)
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < count:
        raise refuse(f"The channel must be a whole number from 0 to {count - 1} for {block}, not {_short(channel)}.")
    return block, channel


def channel_number(channel: Any) -> int:
    """A channel given as a whole number (or its digits as text); the model checks the range."""
    if isinstance(channel, str) and channel.strip().isdigit():
        channel = int(channel)
    if isinstance(channel, bool) or not isinstance(channel, int):
        raise refuse(f"The channel must be a whole number, not {_short(channel)}.")
    return channel


def photo_payload(payload: Any, upload_dir: str | None = None) -> str | bytes | None:
    """The photo input's preprocessing: a path inside Gradio's upload cache, or the bytes of a data URL.

    Data URLs are size-checked from their length and their header is checked (format, pixel count, geometry)
    before anything decodes them; Gradio's own preprocessing would decode them first.

    Raises:
        gr.Error: the sentence for whatever is wrong with the payload.
    """
    if payload is None:
        return None
    url = getattr(payload, "url", None) or ""
    path = getattr(payload, "path", None) or ""
    if isinstance(url, str) and url.startswith("data:"):
        try:
            data = read_data_url(url)
            check_header(data)
        except ImageRejected as error:
            raise refuse(str(error)) from None
        return data
    if not isinstance(path, str) or not path:
        raise refuse("The photo must be an uploaded file or a data: URL. Please upload the image first.")
    return path


def _label(component: Any) -> str:
    """A component's English label (labels are i18n keys)."""
    from .i18n import TEXT

    label = getattr(component, "label", None)
    key = getattr(label, "key", label)
    return str(TEXT["en"].get(key, key) if isinstance(key, str) else type(component).__name__).lower()


def _choices(component: Any) -> list[Any]:
    return [choice[1] if isinstance(choice, list | tuple) else choice for choice in (component.choices or [])]


def _file_problem(demo: gr.Blocks, value: Any, *, image: bool = True) -> str | None:
    """Why one FileData value may not be used: a data URL over the size limit (and, for a photo, whose header
    fails), a web address, or a path outside the upload cache and the examples."""
    if value is None:
        return None
    what = "photo" if image else "file"
    if not isinstance(value, dict):
        return f"The {what} must be an uploaded file (a FileData object) or a data: URL."
    url, path = value.get("url"), value.get("path")
    if isinstance(url, str) and url.startswith("data:"):
        if not image:  # Gradio would write it to its cache without the upload route's size, rate and cache limits
            return ("Files for this input must be uploaded first (POST /gradio_api/upload); data: URLs are taken "
                    "for single photos only.")
        try:
            check_header(read_data_url(url))
        except ImageRejected as error:
            return str(error)
        value.pop("path", None)  # the data URL is the photo; Gradio would otherwise check (or fetch) this path
        return None
    if not isinstance(path, str) or not path:
        return f"The {what} must be an uploaded file (a FileData object) or a data: URL."
    if "://" in path or path.startswith(("data:", "//")):
        return (f"{what.capitalize()}s given by URL are not fetched by this server. Please upload the file or send "
                "it as a data: URL.")
    roots = [getattr(demo, "GRADIO_CACHE", None), getattr(getattr(demo, "app", None), "uploaded_file_dir", None),
             *getattr(demo, "allowed_paths", [])]
    try:
        resolved = Path(path).resolve()
    except (OSError, RuntimeError, ValueError):
        resolved = None
    if resolved is None or not any(root and resolved.is_relative_to(Path(root).resolve()) for root in roots):
        return (f"The {what} must be uploaded to this server first (POST /gradio_api/upload) or sent as a data: "
                "URL; paths to other files on the server are not accepted.")
    return None


def _files_problem(demo: gr.Blocks, value: Any) -> str | None:
    """``_file_problem`` for every file of a ``gr.File`` input (Batch photos and archives, a visitor's model)."""
    for item in value if isinstance(value, list) else [value]:
        problem = _file_problem(demo, item, image=False)
        if problem:
            return problem
    return None


def _value_problem(demo: gr.Blocks, component: Any, value: Any, name: str) -> str | None:
    """Why one raw request value would be refused by its component, or None."""
    if isinstance(component, gr.Image) and component.preprocess is photo_payload:
        return _file_problem(demo, value)
    if isinstance(component, gr.File):
        return _files_problem(demo, value)
    if isinstance(component, gr.Slider):
        ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) \
            and component.minimum <= value <= component.maximum
        return None if ok else (f"The {name} must be a number from {component.minimum:g} to "
                                f"{component.maximum:g}, not {_short(value)}.")
    if isinstance(component, gr.Dropdown | gr.Radio) and not getattr(component, "multiselect", False):
        choices = _choices(component)
        if value is not None and not isinstance(value, str | int | float) or isinstance(value, bool):
            return f"The {name} must be one value from its list, not {type(value).__name__} {_short(value)}."
        if not getattr(component, "allow_custom_value", False) and value not in choices and value is not None:
            listed = ", ".join(str(choice) for choice in choices[:12])
            return f"Unknown {name} {_short(value)}; choose one of: {listed}."
        return None
    if isinstance(component, gr.Textbox) and value is not None and not isinstance(value, str):
        return f"The {name} must be text, not {type(value).__name__} {_short(value)}."
    return None


def input_problem(demo: gr.Blocks, fn: Any, data: Any) -> tuple[str, str] | None:
    """The first input of a request that its component would reject, as (parameter name, sentence).

    Checked before the request is queued, on the raw JSON values: the number of values, photos (upload-cache paths
    or data URLs, whose size and header are checked here, before anything decodes them), numbers of sliders,
    and the choices of fixed lists. The handlers check names against the model afterwards.
    """
    inputs = list(fn.inputs)
    if not isinstance(data, list) or len(data) != len(inputs):
        got = len(data) if isinstance(data, list) else 0
        names = ", ".join(_label(component) for component in inputs if not isinstance(component, gr.State))
        return "data", f"This endpoint takes {len(inputs)} values ({names}); the request has {got}."
    for component, value in zip(inputs, data, strict=True):
        if isinstance(component, gr.State):
            continue
        name = _label(component)
        problem = _value_problem(demo, component, value, name)
        if problem:
            return name, problem
    return None
