"""Read a state dict from an untrusted weights file, or say in one sentence what the file is instead.

Nothing here runs code from a file: ``torch.save`` files are read with ``torch.load(weights_only=True)`` and
``.safetensors`` files with safetensors. Files that cannot hold a state dict (TorchScript, ONNX, Keras, plain
pickles, text, random or truncated bytes) are recognised by their first bytes and refused with a sentence that
says what the file is and what to do; PyTorch's own error text (which suggests ``weights_only=False``) is never
relayed.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .checkpoint import CheckpointError

# Where training scripts commonly nest the state dict inside a saved dict.
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net", "network", "weights")
# Prefixes added by wrappers: nn.DataParallel / DistributedDataParallel, and torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
SAVE_HINT = "save the weights with torch.save(model.state_dict(), 'model.pth') and convert that file"


class WeightsFileError(CheckpointError):
    """A file does not hold a usable state dict; the message is one sentence saying what it is and what to do."""


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return sum(ch.isprintable() or ch in "\r\n\t" for ch in text) >= 0.95 * max(1, len(text))


def _zip_kind(path: Path) -> str:
    """``torch``, ``torchscript``, ``numpy`` or ``zip`` for a ZIP file; ``damaged`` when it cannot be listed."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError):
        return "damaged"
    if any(name.endswith("/constants.pkl") or "/code/" in name for name in names):
        return "torchscript"
    if any(name.endswith("data.pkl") for name in names):
        return "torch"
    if names and all(name.endswith(".npy") for name in names):
        return "numpy"
    return "zip"


_ZIP_KINDS = {  # what a ZIP file is -> what to say (None: a torch.save archive, read it)
    "torchscript": ("{name} is a TorchScript archive (torch.jit.save), which is not opened here because loading it "
                    "runs its code; in the project that made it, " + SAVE_HINT),
    "numpy": "{name} is a NumPy .npz archive, not PyTorch weights; " + SAVE_HINT,
    "zip": "{name} is a ZIP archive but not a torch.save file; unzip it and convert the .pth file inside",
    "damaged": ("{name} looks like a torch.save file but it is truncated or damaged; copy or download it again "
                "(compare its size with the original)"),
}


def _other_format(head: bytes) -> str | None:
    """Formats recognised by their first bytes that never hold a PyTorch state dict."""
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "{name} is an HDF5 file (Keras or TensorFlow weights), not PyTorch weights; only PyTorch models convert"
    if head.startswith(b"\x93NUMPY"):
        return "{name} is a NumPy array file, not a state dict; " + SAVE_HINT
    if _looks_like_onnx(head):
        return ("{name} is an ONNX model, which holds a graph rather than a PyTorch state dict; in the project that "
                "exported it, " + SAVE_HINT)
    if head.startswith(b"\x80") and len(head) > 1 and 2 <= head[1] <= 5 and not _is_legacy_torch(head):
        return ("{name} is a plain Python pickle, not a torch.save file, and is not opened here because unpickling "
                "can run code; " + SAVE_HINT)
    return None


def sniff(path: Path) -> str | None:
    """What the first bytes say the file is, when it cannot be a state dict: a sentence; None to go on reading.

    Only called on files that exist; the sentence starts with the file's name.
    """
    with path.open("rb") as handle:
        head = handle.read(4096)
    if not head:
        sentence: str | None = "{name} is empty: the upload or copy did not finish; copy the file again"
    elif head.startswith(b"PK"):
        sentence = _ZIP_KINDS.get(_zip_kind(path))
    elif _is_safetensors(head, path) or _is_legacy_torch(head):
        sentence = None
    else:
        sentence = _other_format(head)
        if sentence is None and _looks_like_text(head):
            sentence = "{name} is a text file, not model weights; give the .pth file written by torch.save"
        elif sentence is None:
            sentence = ("{name} is not a PyTorch weights file (its first bytes match no known format); give the .pth "
                        "file written by torch.save, or a .safetensors file")
    return sentence.format(name=path.name) if sentence else None


def _looks_like_onnx(head: bytes) -> bool:
    # ModelProto starts with ir_version (field 1, varint: 0x08) and usually producer_name (field 2: 0x12).
    return head[:1] == b"\x08" and len(head) > 3 and head[2:3] == b"\x12" and (
        b"pytorch" in head[:64] or b"onnx" in head[:256].lower() or b"tf2onnx" in head[:64])


def _is_legacy_torch(head: bytes) -> bool:
    # Pre-1.6 torch.save: a pickled magic number 0x1950a86a20f9469cfc6c as the first record.
    return head.startswith(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19")


def _is_safetensors(head: bytes, path: Path) -> bool:
    if len(head) < 10:
        return False
    size = int.from_bytes(head[:8], "little")
    return 2 <= size <= path.stat().st_size - 8 and head[8:9] == b"{"


def read_weights_file(path: str | Path) -> object:
    """What a ``torch.save`` or ``.safetensors`` file holds, read without running code.

    Raises:
        WeightsFileError: one sentence naming the file, what it is and what to do.
    """
    source = Path(path)
    if not source.is_file():
        raise WeightsFileError(f"{source.name} was not found (or is not a file); check the path")
    try:
        refusal = sniff(source)
    except OSError as error:
        raise WeightsFileError(f"{source.name} cannot be read ({error.strerror or 'input/output error'})") from None
    if refusal:
        raise WeightsFileError(refusal)
    with source.open("rb") as handle:
        head = handle.read(16)
    if _is_safetensors(head, source):
        return _read_safetensors(source)
    return _torch_load(source)


def _read_safetensors(source: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(source), device="cpu")
    except Exception:  # safetensors raises its own types, and OSError/ValueError, for damaged files
        raise WeightsFileError(f"{source.name} is a damaged or truncated .safetensors file; copy it again") from None


def _torch_load(source: Path) -> object:
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
        if found and _names_an_object(found.group(1)):
            raise WeightsFileError(
                f"{source.name} holds a pickled Python object ({found.group(1)}), probably a whole model saved "
                f"with torch.save(model, ...), which is not loaded because unpickling it could run code; {SAVE_HINT}"
            ) from None
        raise WeightsFileError(_damaged(source)) from None
    except MemoryError:
        raise WeightsFileError(f"{source.name} is damaged: it asks for more memory than this machine has") from None
    except Exception:  # a damaged pickle can raise almost anything (KeyError, IndexError, struct.error, ...)
        raise WeightsFileError(_damaged(source)) from None


def _names_an_object(name: str) -> bool:
    """Whether a global refused by the weights-only unpickler names a real class (a whole pickled model), rather
    than a damaged byte in the name of something a state dict uses (``torch.FloatStorage``, ``_rebuild_tensor``)."""
    parts = name.split(".")
    if len(parts) < 2 or not all(part.isidentifier() for part in parts):
        return False
    if re.search(r"Storage|rebuild|Ordere|_utils", name):
        return False
    return parts[0] not in ("torch", "collections") or parts[1] == "nn"


def _damaged(source: Path) -> str:
    return (f"{source.name} is a damaged or truncated torch.save file, or not one at all; copy or download it again "
            "(compare its size with the original)")


def extract_state_dict(loaded: object, *, source: str = "the file") -> dict[str, Tensor]:
    """The state dict inside what ``torch.load`` returned, with DataParallel / torch.compile prefixes removed.

    Accepts a bare state dict, or one nested under ``state_dict`` / ``model`` / ``model_state_dict`` / ...
    (checkpoints saved with the epoch, the optimizer and metrics beside the weights).
    """
    for _ in range(3):  # {"model": {"state_dict": {...}}} happens too
        if not isinstance(loaded, Mapping) or _all_tensors(loaded):
            break
        inner = next((loaded[key] for key in WRAPPER_KEYS if isinstance(loaded.get(key), Mapping)), None)
        if inner is None:
            break
        loaded = inner
    if not isinstance(loaded, Mapping) or not loaded or not _all_tensors(loaded):
        if isinstance(loaded, Mapping) and loaded:
            keys = ", ".join(sorted(map(str, loaded))[:6])
            what = f"a dict with {keys}{' ...' if len(loaded) > 6 else ''} but no weights"
        elif isinstance(loaded, Mapping):
            what = "an empty dict"
        else:
            what = f"a {type(loaded).__name__}"
        raise WeightsFileError(f"{source} holds {what}, not a state dict (names mapped to tensors); {SAVE_HINT}")
    state: dict[str, Tensor] = {}
    for key, tensor in loaded.items():
        name = strip_prefixes(str(key))
        if name in state:
            raise WeightsFileError(f"{source} holds two tensors named {name!r} once prefixes are removed; save the "
                                   "state dict of the unwrapped model (model.module.state_dict())")
        state[name] = tensor
    return state


def strip_prefixes(key: str) -> str:
    """``module._orig_mod.layer1.0.conv1.weight`` -> ``layer1.0.conv1.weight``."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def _all_tensors(mapping: Mapping[Any, Any]) -> bool:
    return all(isinstance(value, Tensor) for value in mapping.values())


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The state dict of a ``.pth`` / ``.pt`` / ``.safetensors`` file, read safely (see :func:`read_weights_file`)."""
    source = Path(path)
    return extract_state_dict(read_weights_file(source), source=source.name)
