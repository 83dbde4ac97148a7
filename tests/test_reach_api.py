"""The compare, batch, report, classify / explain / list_models endpoints through a real ``gradio_client`` against a
launched app, and the MCP server through the ``mcp`` Python SDK over streamable HTTP."""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from app_server import LABELS, free_port, torch_threads, write_checkpoint
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError, ValidationError
from hostile_files import assert_human
from hostile_zips import EXPECTED, hostile_zip

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "examples" / "Monkeypox_1.jpg"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The app on two small random-weight models of different families, MCP server on, on a free port."""
    import app

    checkpoints = tmp_path_factory.mktemp("checkpoints")
    write_checkpoint(checkpoints, "alpha", "se_resnet18", seed=1)
    write_checkpoint(checkpoints, "beta", "se_densenet121", seed=2)
    with torch_threads(1):
        demo = app.build_demo(checkpoints, device="cpu")
        demo.queue(default_concurrency_limit=2)
        demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
                    mcp_server=True, **app.launch_options())
        try:
            yield demo.local_url, Client(demo.local_url, verbose=False)
        finally:
            demo.close()


def test_compare_endpoint(server) -> None:
    _, client = server
    summary, table, overlays, charts, stages = client.predict(handle_file(str(PHOTO)), ["alpha", "beta"], "gradcam",
                                                              api_name="/compare")
    assert "model" in summary and summary.endswith(".")
    assert table["headers"] == ["class", "SE-ResNet-18", "SE-DenseNet-121"] and len(table["data"]) == len(LABELS)
    for column in (1, 2):
        assert sum(row[column] for row in table["data"]) == pytest.approx(1, abs=1e-3)
    assert [item["caption"].split(":")[0] for item in overlays] == ["SE-ResNet-18", "SE-DenseNet-121"]
    assert all(Path(item["image"]).is_file() for item in overlays)
    assert charts is None  # different families: no side-by-side SE chart, the per-stage table instead
    assert "| SE-ResNet-18 |" in stages and "| SE-DenseNet-121 |" in stages and "stage 5" in stages
    with pytest.raises(AppError) as caught:
        client.predict(handle_file(str(PHOTO)), ["alpha", "../../etc/passwd"], "gradcam", api_name="/compare")
    assert "unknown model" in caught.value.message and "Traceback" not in caught.value.message  # the catalog's words


def test_batch_endpoint_with_a_hostile_zip(server, tmp_path: Path) -> None:
    _, client = server
    archive = hostile_zip(tmp_path / "hostile.zip")
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    csv_path, table, gallery = client.predict([handle_file(str(PHOTO)), handle_file(str(archive)),
                                               handle_file(str(notes))], "alpha", api_name="/batch")
    with open(csv_path, encoding="utf-8", newline="") as handle:
        records = list(csv.DictReader(handle))
    assert len(records) == 1 + len(EXPECTED) + 1 == len(table["data"])
    assert table["headers"][3] == "Monkeypox vs rest"
    assert records[0]["file"] == PHOTO.name and records[0]["status"] == "ok"
    by_file = {r["file"]: r for r in records}
    for name, phrase in EXPECTED.items():
        record = by_file[f"hostile.zip/{name}"]
        if phrase is None:
            assert record["status"] == "ok" and record["top_class"] in LABELS
            assert 0 < float(record["positive_vs_rest"]) < 1 and record["positive_class"] == "Monkeypox"
        else:
            assert record["status"] == "skipped" and phrase in record["reason"].lower(), (name, record)
            assert_human(record["reason"], str(tmp_path))
    assert "not an image" in by_file["notes.txt"]["reason"]
    assert len(gallery) == 3  # the photo and the two good archive members
    with pytest.raises(AppError) as caught:
        client.predict([], "alpha", api_name="/batch")
    assert_human(caught.value.message)


def test_report_endpoint_gives_a_two_page_pdf(server, tmp_path: Path) -> None:
    _, client = server
    pdf = client.predict(handle_file(str(PHOTO)), "beta", "gradcam", api_name="/report")
    data = Path(pdf).read_bytes()
    assert data.startswith(b"%PDF") and Path(pdf).name == "senet_report_beta.pdf"
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", pdf], capture_output=True, text=True, check=True, timeout=60).stdout
        assert "Pages:           2" in info
    with pytest.raises(ValidationError) as refused:  # refused before it is queued (ui/request_checks.py)
        client.predict(handle_file(str(PHOTO)), "beta", "magic", api_name="/report")
    # The Explore tab's method dropdown checks the value first, as for /analyze.
    assert "Unknown cam method 'magic'" in str(refused.value) and "Traceback" not in str(refused.value)
    with pytest.raises(AppError) as caught:
        client.predict(handle_file(str(ROOT / "README.md")), "beta", "gradcam", api_name="/report")
    assert_human(caught.value.message)


def test_classify_explain_and_list_models_endpoints(server) -> None:
    _, client = server
    models = json.loads(client.predict(api_name="/list_models"))
    assert {m["name"] for m in models} == {"alpha", "beta"} and all(m["available"] for m in models)
    answer = json.loads(client.predict(handle_file(str(PHOTO)), "alpha", api_name="/classify"))
    assert answer["top_class"] in LABELS and answer["probability"] == max(answer["probabilities"].values())
    assert answer["positive_class"] == "Monkeypox" and answer["model"] == "alpha"
    overlay = client.predict(handle_file(str(PHOTO)), "beta", "gradcam++", api_name="/explain")
    assert Path(overlay).is_file() and Path(overlay).stat().st_size > 1000


def _mcp_call(url: str, data_url: str) -> tuple[list[str], object, object]:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async def run():
        async with streamablehttp_client(url.rstrip("/") + "/gradio_api/mcp/") as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                listed = await session.list_tools()
                classified = await session.call_tool("classify", {"image": data_url, "model": "alpha"})
                explained = await session.call_tool("explain", {"image": data_url, "model": "alpha"})
                return [tool for tool in listed.tools], classified, explained

    return asyncio.run(asyncio.wait_for(run(), timeout=240))


def test_mcp_client_lists_tools_and_classifies_a_base64_photo(server) -> None:
    url, _ = server
    data_url = "data:image/jpeg;base64," + base64.b64encode(PHOTO.read_bytes()).decode("ascii")
    tools, classified, explained = _mcp_call(url, data_url)
    by_name = {tool.name: tool for tool in tools}
    assert {"classify", "explain", "list_models"} <= set(by_name)
    assert "not a medical diagnosis" in by_name["classify"].description
    assert "image" in by_name["classify"].inputSchema["properties"]
    assert not classified.isError
    answer = json.loads(classified.content[0].text)
    assert answer["top_class"] in LABELS and answer["model"] == "alpha"
    assert sum(answer["probabilities"].values()) == pytest.approx(1, abs=1e-3)
    assert not explained.isError
    assert any(item.type == "image" and len(base64.b64decode(item.data)) > 1000 for item in explained.content), \
        explained.content


def test_mcp_keeps_gradio_ssrf_protection(server) -> None:
    """A photo URL on the server's own machine is refused by Gradio's downloader, not fetched (the same photo as
    base64 is classified above)."""
    from gradio import processing_utils

    url, _ = server
    photo_url = url.rstrip("/") + "/gradio_api/file=" + str(PHOTO)
    _, classified, _ = _mcp_call(url, photo_url)
    assert classified.isError, classified.content
    with pytest.raises(ValueError, match="failed validation"):  # the check that refused it
        asyncio.run(processing_utils.async_ssrf_protected_get(photo_url))
