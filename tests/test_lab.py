"""JupyterLab after the main job: a real Jupyter server opens every pair, runs it, and saving changes nothing.

Uses the session's smoke run, written through the runner's pairing path. The
server runs on a free loopback port with jupytext's contents manager, as
`make lab` starts it.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from bnlib import runner
from bnlib.paths import REPO_ROOT

pytestmark = pytest.mark.slow
TOKEN = uuid.uuid4().hex


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(base, path, method="GET", body=None):
    req = urllib.request.Request(f"{base}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.status, json.loads(r.read() or b"null")


@pytest.fixture(scope="module")
def server(smoke_run, tmp_path_factory):
    """A Jupyter server on a copy of the smoke run's notebooks (its tests add and touch files there)."""
    nbdir = tmp_path_factory.mktemp("lab") / "notebooks"
    shutil.copytree(smoke_run[1], nbdir)
    cache = smoke_run[2]
    port = _free_port()
    env = os.environ | {"BNLIB_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO_ROOT),
                        "JUPYTER_RUNTIME_DIR": str(tmp_path_factory.mktemp("runtime"))}
    log = open(tmp_path_factory.mktemp("log") / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyter", "server", "--no-browser", f"--port={port}",
                             "--ip=127.0.0.1", f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={nbdir}",
                             "--allow-root"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=nbdir)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if _call(base, "/api/status")[0] == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"jupyter server did not start: {open(log.name).read()[-2000:]}")
    yield base, nbdir, cache
    proc.terminate()
    proc.wait(timeout=30)


@pytest.mark.parametrize("name", runner.NOTEBOOKS)
def test_server_opens_both_files_of_every_pair_with_identical_cells(server, name):
    base, nbdir, _ = server
    status, from_py = _call(base, f"/api/contents/{name}.py?type=notebook&content=1")
    assert status == 200
    status, from_ipynb = _call(base, f"/api/contents/{name}.ipynb?content=1")
    assert status == 200
    sources = lambda nb: [(c["cell_type"], c["source"]) for c in nb["content"]["cells"]]  # noqa: E731
    assert sources(from_py) == sources(from_ipynb)
    assert any(c.get("outputs") for c in from_py["content"]["cells"])  # outputs come from the paired .ipynb
    # saving from Lab rewrites the .py exactly as it was
    before = (nbdir / f"{name}.py").read_text()
    status, _ = _call(base, f"/api/contents/{name}.py", "PUT",
                      {"type": "notebook", "format": "json", "content": from_py["content"]})
    assert status == 200 and (nbdir / f"{name}.py").read_text() == before


def test_a_kernel_started_by_the_server_runs_a_notebook_top_to_bottom(server, tmp_path):
    import websocket  # websocket-client, a jupyter dependency

    base, _, cache = server
    _, nb = _call(base, "/api/contents/02_silhouette.py?type=notebook&content=1")
    _, kernel = _call(base, "/api/kernels", "POST", {"name": "python3"})
    ws = websocket.create_connection(f"{base.replace('http', 'ws')}/api/kernels/{kernel['id']}/channels"
                                     f"?token={TOKEN}", timeout=300)
    try:
        for cell in nb["content"]["cells"]:
            if cell["cell_type"] != "code":
                continue
            code = cell["source"]
            if "parameters" in cell["metadata"].get("tags", []):  # write the figures here, not into the repo
                code += f"\noutput_dir = {str(tmp_path)!r}\ncache_dir = {str(cache)!r}"
            msg_id = uuid.uuid4().hex
            ws.send(json.dumps({"header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                                           "session": "test", "version": "5.3"},
                                "parent_header": {}, "metadata": {}, "channel": "shell",
                                "content": {"code": code, "silent": False, "store_history": True,
                                            "user_expressions": {}, "allow_stdin": False}}))
            while True:
                reply = json.loads(ws.recv())
                if reply.get("parent_header", {}).get("msg_id") == msg_id and reply["msg_type"] == "execute_reply":
                    assert reply["content"]["status"] == "ok", (code, reply["content"])
                    break
    finally:
        ws.close()
        _call(base, f"/api/kernels/{kernel['id']}", "DELETE")
    assert (tmp_path / "silhouette.png").is_file()


REPO_VENV_SETTINGS = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_lab_screenshot(server, tmp_path):
    base, _, _ = server
    shot = tmp_path / "lab.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'u'}",
                    "--window-size=1400,900", "--virtual-time-budget=15000", f"--screenshot={shot}",
                    f"{base}/lab/tree/01_sparsity.py?token={TOKEN}"], check=True, timeout=120, capture_output=True)
    # The .py opens as a notebook (Makefile installs bnlib/lab_overrides.json): rendered markdown, code cells.
    if REPO_VENV_SETTINGS.is_file():
        dom = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                              f"--user-data-dir={tmp_path / 'u2'}", "--window-size=1400,900",
                              "--virtual-time-budget=15000", "--dump-dom",
                              f"{base}/lab/tree/01_sparsity.py?token={TOKEN}"],
                             check=True, timeout=120, capture_output=True, text=True).stdout
        assert "jp-Notebook" in dom and "Average channel sparsity, with and without BatchNorm" in dom
    assert shot.stat().st_size > 10_000
    if os.environ.get("BNLIB_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["BNLIB_KEEP_SCREENSHOT"])


def _cells(nb):
    return [(c["cell_type"], c["source"]) for c in nb["cells"]]


def _copied_pair(nbdir, name: str, folder: str):
    """The pair and the jupytext config copied into nbdir/<folder>/, so these tests leave the other tests' pairs be."""
    where = nbdir / folder
    where.mkdir(exist_ok=True)
    for f in (f"{name}.py", f"{name}.ipynb", "jupytext.toml"):
        shutil.copy2(nbdir / f, where / f)
    return where / f"{name}.py", where / f"{name}.ipynb"


@pytest.mark.parametrize("name", runner.NOTEBOOKS)
def test_every_pair_opens_with_the_py_cells_when_its_ipynb_is_newer(server, name):
    """git keeps no file times: after a pull, checkout or stash the .ipynb can be newer than its .py. Lab must still
    open the pair, with the .py's cells and the .ipynb's outputs, and a save must leave the .py as it was."""
    import jupytext

    base, nbdir, _ = server
    py, ipynb = _copied_pair(nbdir, name, "pulled")
    later = py.stat().st_mtime + 3600
    os.utime(ipynb, (later, later))
    expected = [(c.cell_type, c.source) for c in jupytext.read(py).cells]
    for path in (py, ipynb):
        status, model = _call(base, f"/api/contents/pulled/{path.name}?type=notebook&content=1")
        assert status == 200 and _cells(model["content"]) == expected, path.name
    assert any(c.get("outputs") for c in model["content"]["cells"])
    before = py.read_text()
    status, _ = _call(base, f"/api/contents/pulled/{py.name}", "PUT",
                      {"type": "notebook", "format": "json", "content": model["content"]})
    assert status == 200 and py.read_text() == before


def test_an_ipynb_checked_out_from_an_older_commit_opens_with_the_py_cells(server):
    """An older commit's executed notebook (other cells, other outputs), newer on disk than the .py: the .py wins."""
    import jupytext

    base, nbdir, _ = server
    name = "01_sparsity"
    log = subprocess.run(["git", "log", "--format=%H", "-n", "1", "--skip", "3", "--", f"notebooks/{name}.ipynb"],
                         cwd=REPO_ROOT, capture_output=True, text=True)
    if log.returncode != 0 or not log.stdout.strip():
        pytest.skip("no git history of the notebook here")
    old = subprocess.run(["git", "show", f"{log.stdout.strip()}:notebooks/{name}.ipynb"], cwd=REPO_ROOT,
                         capture_output=True, check=True).stdout
    py, ipynb = _copied_pair(nbdir, name, "checkout")
    ipynb.write_bytes(old)
    later = py.stat().st_mtime + 3600
    os.utime(ipynb, (later, later))
    expected = [(c.cell_type, c.source) for c in jupytext.read(py).cells]
    assert _cells(json.loads(old)) != expected  # really another version of the notebook
    status, model = _call(base, f"/api/contents/checkout/{py.name}?type=notebook&content=1")
    assert status == 200 and _cells(model["content"]) == expected
