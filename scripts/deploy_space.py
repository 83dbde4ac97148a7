"""Deploy the app to a Hugging Face Space: exactly the files the Space needs, large checkpoints included.

    python scripts/deploy_space.py USER/SPACE --dry-run     # list files and sizes, check README and requirements
    python scripts/deploy_space.py USER/SPACE               # create the Space if needed and upload (needs a token)

A plain ``git push`` of this repository to a Space is refused: the Hub takes files over 10 MB only through its
large-file storage, and both shipped checkpoints are larger. ``huggingface_hub``'s ``upload_folder`` stores them
there by itself. Uploaded: ``app.py``, ``ui/``, ``senet/``, ``checkpoints/``, ``examples/``, ``requirements.txt``,
``README.md`` (its front matter configures the Space) and ``LICENSE``; never tests, scripts, runs or data. Remote
files that are no longer part of the app are deleted in the same commit. The token comes from ``HF_TOKEN`` or
``huggingface-cli login``.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOW_PATTERNS = ["app.py", "ui/*.py", "senet/*.py", "checkpoints/*.safetensors", "checkpoints/*.json",
                  "checkpoints/*.md", "checkpoints/*.png", "examples/*.jpg", "examples/*.png", "examples/README.md",
                  "requirements.txt", "README.md", "LICENSE"]
IGNORE_PATTERNS = ["*/__pycache__/*", "*.pyc", "*.pyi", ".*", "*/.*"]
LARGE_FILE = 10 * 2**20  # the Hub's limit for files outside its large-file storage
PICKLES = (".pth", ".pt", ".pkl", ".ckpt", ".bin")
_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[A-Za-z0-9_,\- ]+\])?==([A-Za-z0-9_.+\-]+)$")


@dataclass(frozen=True)
class Plan:
    """What would be uploaded, and what is wrong with it (an empty ``problems`` list means ready)."""

    files: list[tuple[str, int]]  # (path in the Space, bytes)
    problems: list[str]
    front_matter: dict


def space_files(root: Path = ROOT) -> list[tuple[str, int]]:
    """The files ``upload_folder`` would send with this script's patterns, as (relative path, size)."""
    from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

    relative = sorted(path.relative_to(root).as_posix() for path in root.glob("**/*") if path.is_file())
    chosen = filter_repo_objects(relative, allow_patterns=ALLOW_PATTERNS,
                                 ignore_patterns=IGNORE_PATTERNS + list(DEFAULT_IGNORE_PATTERNS))
    return [(name, (root / name).stat().st_size) for name in chosen]


def read_front_matter(readme: Path) -> dict:
    """The YAML block between the first two ``---`` lines of the README ({} when there is none)."""
    import yaml

    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    match = re.match(r"^---\n(.*?)\n---\n", text, re.DOTALL)
    if not match:
        return {}
    data = yaml.safe_load(match.group(1))
    return data if isinstance(data, dict) else {}


def requirement_pins(requirements: Path) -> tuple[dict[str, str], list[str]]:
    """``{package: version}`` of ``requirements.txt`` and the lines that are not plain ``name==version`` pins."""
    pins: dict[str, str] = {}
    loose: list[str] = []
    for line in requirements.read_text(encoding="utf-8").splitlines() if requirements.is_file() else []:
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line.replace(" ", ""))
        if match is None:
            loose.append(line)
        else:
            pins[match.group(1).lower().replace("_", "-")] = match.group(3)
    return pins, loose


def front_matter_problems(meta: dict, pins: dict[str, str], names: set[str]) -> list[str]:
    """What is wrong with the README's front matter for a Gradio Space running this app."""
    problems = []
    if not meta:
        problems.append("README.md has no front matter (the --- block that configures the Space)")
    if meta.get("sdk") != "gradio":
        problems.append(f"front matter: sdk is {meta.get('sdk')!r}, expected 'gradio'")
    if str(meta.get("sdk_version")) != pins.get("gradio"):
        problems.append(f"front matter: sdk_version {meta.get('sdk_version')!r} differs from the gradio pin in "
                        f"requirements.txt ({pins.get('gradio')!r})")
    app_file = meta.get("app_file")
    if not app_file or app_file not in names:
        problems.append(f"front matter: app_file {app_file!r} is not among the uploaded files")
    if not re.fullmatch(r"3\.\d+(\.\d+)?", str(meta.get("python_version", ""))):
        problems.append(f"front matter: python_version {meta.get('python_version')!r} is not a Python 3 version")
    if not meta.get("title"):
        problems.append("front matter: title is missing")
    return problems


def requirement_problems(pins: dict[str, str], loose: list[str], names: set[str]) -> list[str]:
    """What is wrong with requirements.txt: missing, unpinned lines, missing runtime packages, mcp 2.x."""
    problems = [] if "requirements.txt" in names else ["requirements.txt is missing"]
    problems += [f"requirements.txt: {line!r} is not pinned as name==version (or is a local path or URL)"
                 for line in loose]
    problems += [f"requirements.txt: {needed} is not pinned" for needed in ("gradio", "torch", "safetensors",
                                                                             "grad-cam") if needed not in pins]
    if "mcp" in pins and int(pins["mcp"].split(".")[0]) >= 2:
        problems.append("requirements.txt: gradio 6.31's MCP server needs mcp<2")
    return problems


def check(root: Path = ROOT) -> Plan:
    """List the Space's files and check the front matter and requirements against them."""
    files = space_files(root)
    names = {name for name, _ in files}
    meta = read_front_matter(root / "README.md")
    pins, loose = requirement_pins(root / "requirements.txt")
    problems = front_matter_problems(meta, pins, names) + requirement_problems(pins, loose, names)
    problems += [f"{name} is a pickle file; the app never loads those, so it is not uploaded"
                 for name in sorted(names) if name.endswith(PICKLES)]
    if not any(name.startswith("checkpoints/") and name.endswith(".safetensors") for name in names):
        problems.append("no checkpoint (checkpoints/*.safetensors) would be uploaded")
    return Plan(files, problems, meta)


def _size(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 2**10:.1f} KB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deploy SENet Explorer to a Hugging Face Space.")
    parser.add_argument("space", help="USER/SPACE, the Space's repository id")
    parser.add_argument("--dry-run", action="store_true", help="list and check only; nothing is sent")
    parser.add_argument("--private", action="store_true", help="create the Space as private")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)  # tests use a copy
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*", args.space):
        print(f"deploy_space: {args.space!r} is not a USER/SPACE repository id", file=sys.stderr)
        return 2
    plan = check(args.root)
    print(f"Files for the Space {args.space} ({len(plan.files)}):")
    for name, size in plan.files:
        note = "  (large-file storage)" if size > LARGE_FILE else ""
        print(f"  {_size(size):>9}  {name}{note}")
    print(f"  {_size(sum(size for _, size in plan.files)):>9}  in all")
    meta = plan.front_matter
    print(f"Front matter: sdk {meta.get('sdk')} {meta.get('sdk_version')}, python {meta.get('python_version')}, "
          f"app_file {meta.get('app_file')}")
    if plan.problems:
        print("Not ready:", file=sys.stderr)
        for problem in plan.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print("Checks passed.")
    if args.dry_run:
        return 0
    from huggingface_hub import HfApi

    api = HfApi()
    url = api.create_repo(args.space, repo_type="space", space_sdk="gradio", exist_ok=True, private=args.private)
    api.upload_folder(repo_id=args.space, repo_type="space", folder_path=str(args.root),
                      allow_patterns=ALLOW_PATTERNS, ignore_patterns=IGNORE_PATTERNS, delete_patterns=["*"],
                      commit_message="Deploy SENet Explorer")
    print(f"Uploaded: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
