"""``python app.py``: fast help, clean one-line errors, a start-up log that names the models."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from app_server import write_checkpoint

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import app  # noqa: E402


def test_importing_app_imports_neither_gradio_nor_torch() -> None:
    code = "import sys, app; print('gradio' in sys.modules, 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_help_needs_no_heavy_import() -> None:
    code = ("import sys, app\ntry:\n    app.parse_args(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('gradio' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "--checkpoints" in result.stdout and result.stdout.strip().endswith("False")


def test_argument_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        app.parse_args(["--checkpoints", str(tmp_path / "missing")])
    assert "is not a folder" in capsys.readouterr().err
    monkeypatch.setenv("SENET_DEVICE", "tpu")
    with pytest.raises(SystemExit):
        app.parse_args([])
    assert "SENET_DEVICE" in capsys.readouterr().err


def test_a_taken_port_is_one_line_naming_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit, match="--port") as caught:
            app.main(["--port", str(port), "--device", "cpu"])
    assert "\n" not in str(caught.value)


def test_env_cuda_without_a_gpu_is_the_same_message_as_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(SystemExit) as flag:
        app.main(["--device", "cuda", "--port", str(port)])
    monkeypatch.setenv("SENET_DEVICE", "cuda")
    with pytest.raises(SystemExit) as env:
        app.main(["--port", str(port)])
    assert str(flag.value) == str(env.value) and "no CUDA GPU" in str(env.value)


def test_start_up_log_names_every_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from senet.catalog import Catalog

    write_checkpoint(tmp_path, "good", "se_resnet18", size=64)
    (tmp_path / "broken.json").write_text((tmp_path / "good.json").read_text())
    (tmp_path / "broken.safetensors").write_bytes(b"not safetensors")
    app._log_models(Catalog(tmp_path, device="cpu"))
    out = capsys.readouterr().out
    assert "1 model(s)" in out and "  good: SE-ResNet-18" in out
    assert "  broken: unavailable: broken.safetensors is corrupted" in out  # the reason, for the operator
