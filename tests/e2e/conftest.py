"""End-to-end fixtures: the demo shop built by the CLI, the dashboard served by `streamlit run` on a free
port, and Debian's Chromium driven by Playwright (never a downloaded browser)."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "test-output" / "e2e"
DOCS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CROSSREC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 900}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """The demo shop, built once per session by `crossrec demo` (CROSSREC_E2E_DEMO: copy a built one)."""
    path = tmp_path_factory.mktemp("e2e") / "demo.duckdb"
    prebuilt = os.environ.get("CROSSREC_E2E_DEMO")
    if prebuilt:
        shutil.copy(prebuilt, path)
        if Path(f"{prebuilt}.artefacts").is_dir():  # the runs' fitted models live beside the file
            shutil.copytree(f"{prebuilt}.artefacts", f"{path}.artefacts")
        return path
    crossrec = Path(sys.executable).parent / "crossrec"
    proc = subprocess.run([str(crossrec), "demo", "--db", str(path), "--quiet"], cwd=ROOT, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr
    return path


@pytest.fixture(scope="session")
def demo_facts(demo_db: Path) -> dict:
    """Ids the tests type in, read before the server takes the file."""
    from crossrec_core.store import Store

    with Store(demo_db, read_only=True) as store:
        users = store.user_summary()
        cats = store.categories()
    heavy = users.sort_values(["purchases", "user_id"], ascending=[False, True])["user_id"].tolist()
    tops = cats.groupby("cat_top")["events"].sum().sort_values(ascending=False).index.tolist()
    return {"heavy": heavy[:5], "tops": tops}


def launch(cmd: list[str], port: int, log_path: Path, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Start a dashboard command in its own process group; (process, base URL) once it answers on 127.0.0.1."""
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()  # the child has its own copy
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, base
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            stop(proc)
            raise RuntimeError(f"the dashboard did not start; see {log_path}")
        time.sleep(0.5)


def stop(proc: subprocess.Popen) -> None:
    """End a process started by `launch` and everything it started."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def server(demo_db: Path, demo_facts: dict):
    """`streamlit run app.py` on a free port with CROSSREC_DB set; killed at the end of the session."""
    port = free_port()
    env = {**os.environ, "CROSSREC_DB": str(demo_db), "PYTHONUNBUFFERED": "1"}
    OUT.mkdir(parents=True, exist_ok=True)
    proc, base = launch(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        port, OUT.parent / "e2e-server.log", env)
    yield base
    stop(proc)


def private_copy(demo_db: Path, folder: Path) -> Path:
    """A copy of the demo shop (CROSSREC_E2E_DEMO's when set) with its runs' models, for tests that change it."""
    path = folder / "shop.duckdb"
    source = Path(os.environ.get("CROSSREC_E2E_DEMO") or demo_db)  # a prebuilt demo keeps its models beside it
    shutil.copy(source, path)
    if Path(f"{source}.artefacts").is_dir():
        shutil.copytree(f"{source}.artefacts", f"{path}.artefacts")
    return path


def serve(path: Path, log_name: str) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on `path` on a free port of 127.0.0.1; (process, base URL)."""
    port = free_port()
    OUT.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CROSSREC_DB": str(path), "PYTHONUNBUFFERED": "1"}
    return launch([sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                   "--server.headless", "true", "--server.address", "127.0.0.1",
                   "--browser.gatherUsageStats", "false"], port, OUT.parent / log_name, env)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


IDLE_JS = """() => {
  const done = document.querySelector('.st-key-render_time');
  return !!done && !document.querySelector('[data-stale="true"]')
    && !document.querySelector('[data-testid="stSkeleton"]')
    && !document.querySelector('[data-testid="stSpinner"]')
    && !document.querySelector('[data-testid="stExpanderIconSpinner"]');
}"""


def wait_idle(page, timeout: float = 120, rerun: bool = True) -> None:
    """Wait until the app's script run finished: the sidebar footer (written last by app.py) is there and
    nothing on the page is stale, skeleton or spinning. After an action, first wait for the rerun to start."""
    if rerun:
        try:
            page.wait_for_selector('[data-stale="true"]', timeout=1500)
        except Exception:  # noqa: BLE001  (a fast rerun may finish before we look)
            pass
    page.wait_for_function(IDLE_JS, timeout=timeout * 1000)
    page.wait_for_timeout(200)


def open_page(page, base: str, path: str = "", timeout: float = 120) -> None:
    page.goto(f"{base}/{path}")
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout * 1000)
    wait_idle(page, timeout, rerun=False)


def shot(page, name: str, docs: bool = False) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.png"
    page.screenshot(path=str(path))
    if docs and os.environ.get("CROSSREC_DOC_SCREENSHOTS") == "1":  # refresh the README's pictures on request only
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, DOCS / f"{name}.png")
    return path


def no_exception(page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()


def export_csv(page, base: str, user: str) -> bytes:
    """The Export page's CSV for one user, downloaded through the browser."""
    open_page(page, base, "export")
    box = page.get_by_role("textbox", name="User id")
    box.fill(user)
    box.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Prepare the CSV").click()
    wait_idle(page)
    with page.expect_download() as info:
        page.get_by_test_id("stDownloadButton").get_by_role("button").click()
    return open(info.value.path(), "rb").read()
