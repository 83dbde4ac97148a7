"""scripts/deploy_space.py --dry-run on the repository (no network): the exact file list and the checks."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import deploy_space  # noqa: E402


def test_dry_run_on_the_repository(capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy_space.main(["someone/senet-explorer", "--dry-run"]) == 0
    out = capsys.readouterr().out
    plan = deploy_space.check(ROOT)
    names = [name for name, _ in plan.files]
    assert plan.problems == []
    for needed in ("app.py", "requirements.txt", "README.md", "LICENSE", "senet/explain.py", "ui/explore.py",
                   "checkpoints/se_resnet18_msld_v2.safetensors", "checkpoints/se_resnet18_msld_v2.json",
                   "examples/Monkeypox_1.jpg"):
        assert needed in names, needed
    for name in names:  # nothing the Space does not need
        assert not name.startswith(("tests/", "scripts/", "runs/", "docs/", ".data/", ".git")), name
        assert "__pycache__" not in name and not name.endswith((".pyc", ".pth", ".pt"))
    assert "checkpoints/se_resnet18_msld_v2.safetensors  (large-file storage)" in out
    assert "sdk gradio 6.31.0" in out and "Checks passed." in out
    assert plan.front_matter["app_file"] == "app.py"


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("app.py", "README.md", "requirements.txt", "LICENSE"):
        shutil.copy(ROOT / name, root / name)
    (root / "checkpoints").mkdir()
    (root / "checkpoints" / "m.safetensors").write_bytes(b"x")
    return root


def test_dry_run_catches_a_bad_front_matter_and_requirements(tmp_path: Path, capsys) -> None:
    root = _copy(tmp_path)
    assert deploy_space.main(["someone/space", "--dry-run", "--root", str(root)]) == 0
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace("sdk_version: 6.31.0", "sdk_version: 5.0.0")
                      .replace("app_file: app.py", "app_file: main.py"))
    (root / "requirements.txt").write_text("gradio[mcp]==6.31.0\ntorch>=2\nmcp==2.1.0\n./local_pkg\n")
    (root / "checkpoints" / "old.pth").write_bytes(b"\x80")
    (root / "tests").mkdir()
    (root / "tests" / "test_x.py").write_text("")
    assert deploy_space.main(["someone/space", "--dry-run", "--root", str(root)]) == 1
    problems = "\n".join(deploy_space.check(root).problems)
    for phrase in ("sdk_version '5.0.0' differs", "app_file 'main.py'", "'torch>=2' is not pinned",
                   "'./local_pkg' is not pinned", "needs mcp<2", "safetensors is not pinned"):
        assert phrase in problems, phrase
    names = [name for name, _ in deploy_space.check(root).files]
    assert "checkpoints/old.pth" not in names and "tests/test_x.py" not in names
    assert deploy_space.main(["not a repo id", "--dry-run"]) == 2


@pytest.mark.slow
def test_space_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """On a Space: the share-link button, MCP on, the queue capped; locally none of them."""
    import gradio as gr

    import app

    def deep_links(demo: gr.Blocks) -> int:
        return sum(isinstance(block, gr.DeepLinkButton) for block in demo.blocks.values())

    for name in ("SPACE_ID", "SYSTEM", "SENET_MCP", "SPACES_ZERO_GPU"):
        monkeypatch.delenv(name, raising=False)
    assert not app.on_space() and not app.zero_gpu() and deep_links(app.build_demo(tmp_path, device="cpu")) == 0
    monkeypatch.setenv("SYSTEM", "spaces")
    assert app.on_space() and app.parse_args([]).mcp and app.parse_args([]).host == "0.0.0.0"
    assert deep_links(app.build_demo(tmp_path, device="cpu")) == 1
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert app.zero_gpu()
