"""Dashboard speed on the demo shop, in a real browser.

For every page, with warm caches (each page visited once first): the time from navigation to the page's
main element being visible, and to the end of the page's run — median of N (default 5) — both for
in-app navigation (a click in the sidebar, as a merchandiser moves around) and for a full page load
(a bookmark, a shared link). The same is measured on a peer in the same browser: a bare Streamlit app
with the elements our pages show first (a text input, a plotly bar chart, as many WebGL points as the
Map page draws by default) and nothing of ours, so each figure also reads as a ratio to the floor that
Streamlit and plotly.js set. Then, in a fresh process, the time of a first UMAP on 50,000 random 384-d
points (numba compilation included; goal < 60 s).

    .venv/bin/python benchmarks/app.py [--db DEMO.duckdb] [--repeats 5] [--pages Map ...] [--umap-points 50000]
                                       [--skip-umap]

Without --db it builds the demo shop with `crossrec demo` in a temporary folder (a few minutes). The
database is copied first, so the one given is never held or changed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from crossrec_core.config import Settings

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CROSSREC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

# page title (sidebar link and h1) -> url path, the selector of its main element
PAGES = [
    ("Overview", "", ".treemap"),
    ("User", "user", '[data-testid="stPlotlyChart"] .barlayer'),  # the explained list's contributions
    ("Category", "category", ".sankey"),
    ("Map", "map", '[data-testid="stPlotlyChart"] .legend'),
    ("What-if", "whatif", '[data-testid="stDataFrame"]'),  # the pair-rules editor
    ("Runs", "runs", '[data-testid="stDataFrame"]'),
    ("Export", "export", '[data-testid="stTextInput"]'),  # whose lists (a new session has no user yet)
    ("Data", "data", '[data-testid="stFileUploader"]'),
]
HOME = "Data"  # the light page each timed click starts from

VISIBLE_JS = """([title, selector]) => {
  const fresh = el => !el.closest('[data-stale="true"]');
  const h1 = [...document.querySelectorAll('[data-testid="stMain"] h1')].find(h => fresh(h) && h.innerText.trim() === title);
  if (!h1) return false;
  return [...document.querySelectorAll('[data-testid="stMain"] ' + selector)]
    .some(el => fresh(el) && el.getBoundingClientRect().height > 0);
}"""
DONE_JS = """() => !!document.querySelector('.st-key-render_time') && !document.querySelector('[data-stale="true"]')
  && !document.querySelector('[data-testid="stSkeleton"]') && !document.querySelector('[data-testid="stSpinner"]')"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(db: Path | None, log_path: Path, script: Path = ROOT / "app.py") -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(log_path, "w")
    env = {**os.environ, **({"CROSSREC_DB": str(db)} if db else {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port), "--server.headless",
         "true", "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2):
                return proc, base
        except OSError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise SystemExit(f"streamlit did not start (log: {log_path})")


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def timed(page, title: str, selector: str, go) -> tuple[float, float]:
    """(seconds to the main element, seconds to the end of the run) after `go()` navigates."""
    t0 = time.perf_counter()
    go()
    try:
        page.wait_for_function(VISIBLE_JS, arg=[title, selector], timeout=300_000, polling=10)
    except Exception as exc:  # noqa: BLE001  say what the page shows instead
        shown = page.locator('[data-testid="stAlertContentError"], [data-testid="stException"]').all_inner_texts()
        raise SystemExit(f"{title}: its main element never appeared; the page shows: {shown or 'nothing'}") from exc
    t_main = time.perf_counter() - t0
    page.wait_for_function(DONE_JS, timeout=300_000, polling=10)
    return t_main, time.perf_counter() - t0


# The peer: a bare Streamlit app in the same browser on the same machine, with what our pages put first on
# screen and nothing of ours (no store, no model). Its figures are the floor Streamlit and plotly.js set.
PEER_APP = """
import numpy as np
import plotly.graph_objects as go
import streamlit as st

POINTS = {points}

def text():
    st.title("Text")
    st.text_input("Whose lists")

def chart():
    st.title("Chart")
    st.plotly_chart(go.Figure(go.Bar(x=[f"item {i}" for i in range(20)], y=np.arange(20))))

@st.cache_resource
def cloud():
    rng = np.random.default_rng(0)
    return go.Figure([go.Scattergl(x=rng.normal(size=n), y=rng.normal(size=n), mode="markers",
                                   hovertext=[f"item {i}" for i in range(n)], name=f"category {c}")
                      for c, n in enumerate([POINTS // 15] * 15)])

def points():
    st.title("Points")
    st.plotly_chart(cloud())

st.navigation([st.Page(text, title="Text", url_path="text", default=True),
               st.Page(chart, title="Chart", url_path="chart"),
               st.Page(points, title="Points", url_path="points")]).run()
st.container(key="render_time").caption("done")
"""
PEER_PAGES = [
    ("Text", "", '[data-testid="stTextInput"]'),
    ("Chart", "chart", '[data-testid="stPlotlyChart"] .barlayer'),
    ("Points", "points", '[data-testid="stPlotlyChart"] .legend'),
]
PEER_HOME = "Text"
# which peer page each of ours compares with (what its main element is)
PEER_OF = {"Overview": "Chart", "User": "Chart", "Category": "Chart", "Map": "Points", "What-if": "Text",
           "Runs": "Text", "Export": "Text", "Data": "Text"}


def browser_bench(base: str, repeats: int, pages: list[tuple[str, str, str]], home: str
                  ) -> list[tuple[str, float, float, float, float]]:
    """(title, in-app main, in-app done, full-load main, full-load done) per page. Each timed click starts
    from `home`, a light page (from the first other page when `home` itself is timed), so every click is a
    real page change and no heavy page's teardown is counted."""
    from playwright.sync_api import sync_playwright

    selectors = {title: selector for title, _, selector in pages}
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(300_000)

        def click(title: str) -> tuple[float, float]:
            return timed(page, title, selectors[title],
                         lambda: page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click())

        page.goto(base)
        page.wait_for_function(DONE_JS, timeout=300_000)
        print("warming every page once (first map, first model load, first lists)…", flush=True)
        for title in selectors:
            click(title)
        for title, path, selector in pages:
            inapp, inapp_done, full, full_done = [], [], [], []
            for _ in range(repeats):
                click(home if title != home else next(t for t in selectors if t != home))
                a, b = click(title)
                inapp.append(a)
                inapp_done.append(b)
                a, b = timed(page, title, selector, lambda: page.goto(f"{base}/{path}"))
                full.append(a)
                full_done.append(b)
            rows.append((title, statistics.median(inapp), statistics.median(inapp_done), statistics.median(full),
                         statistics.median(full_done)))
            print(f"  {title:<9} done", flush=True)
        browser.close()
    return rows


UMAP_SNIPPET = """
import time, sys
t0 = time.perf_counter()
import numpy as np
from crossrec_core.projection import umap_2d
t_import = time.perf_counter() - t0
x = np.random.default_rng(0).normal(size=(int(sys.argv[1]), 384)).astype(np.float32)
t1 = time.perf_counter()
xy = umap_2d(x, seed=42)
print(f"{t_import:.2f} {time.perf_counter() - t1:.2f} {time.perf_counter() - t0:.2f} {xy.shape[0]}")
"""


def umap_bench(points: int) -> tuple[float, float, float]:
    out = subprocess.run([sys.executable, "-c", UMAP_SNIPPET, str(points)], cwd=ROOT, capture_output=True, text=True,
                         timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"UMAP benchmark failed: {out.stderr.strip().splitlines()[-1]}")
    t_import, t_fit, total, _ = out.stdout.split()
    return float(t_import), float(t_fit), float(total)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", help="a trained database to copy, e.g. a shared dataset after `crossrec train` "
                    "(default: build the demo shop with `crossrec demo`)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--umap-points", type=int, default=50_000)
    ap.add_argument("--skip-umap", action="store_true")
    ap.add_argument("--skip-pages", action="store_true")
    ap.add_argument("--pages", nargs="+", metavar="TITLE", choices=[t for t, _, _ in PAGES],
                    help="only these pages, e.g. --pages Map User")
    args = ap.parse_args()

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start "
          "(other work on the machine slows every figure)")
    if not args.skip_pages:
        if not Path(CHROMIUM).exists():
            raise SystemExit(f"no Chromium at {CHROMIUM}")
        with tempfile.TemporaryDirectory(prefix="crossrec-bench-") as tmp:
            db = Path(tmp) / "demo.duckdb"
            if args.db:  # the runs' fitted models travel with the file (load_run finds them beside it)
                shutil.copy(args.db, db)
                if Path(args.db + ".artefacts").is_dir():
                    shutil.copytree(args.db + ".artefacts", str(db) + ".artefacts")
            else:
                print("building the demo shop (crossrec demo)…", flush=True)
                crossrec = Path(sys.executable).parent / "crossrec"
                subprocess.run([str(crossrec), "demo", "--db", str(db), "--quiet"], check=True, cwd=ROOT)
            proc, base = start_server(db, Path(tmp) / "server.log")
            try:
                chosen = [p for p in PAGES if not args.pages or p[0] in args.pages or p[0] == HOME]
                rows = browser_bench(base, args.repeats, chosen, HOME)
            finally:
                stop_server(proc)
            peer_script = Path(tmp) / "peer_app.py"
            peer_script.write_text(PEER_APP.replace("{points}", str(Settings().dashboard.map_draw_points)))
            print("the peer: a bare Streamlit app with the same first elements…", flush=True)
            proc, base = start_server(None, Path(tmp) / "peer.log", peer_script)
            try:
                wanted = {PEER_OF[t] for t, _, _ in chosen} | {PEER_HOME}
                peer = {r[0]: r for r in browser_bench(base, args.repeats,
                                                       [p for p in PEER_PAGES if p[0] in wanted], PEER_HOME)}
            finally:
                stop_server(proc)
        head = f"{'in-app: main element':>21} {'run done':>9} {'full load: main element':>24} {'run done':>9}"
        print()
        print(f"Page speed, warm caches, median of {args.repeats} (seconds); in brackets: / the peer page's figure")
        print(f"{'page':<10} {head}   peer page")
        for title, *ours in rows:
            theirs = peer[PEER_OF[title]][1:]
            cells = [f"{o:.2f} ({o / t:.1f}x)" for o, t in zip(ours, theirs)]
            print(f"{title:<10} {cells[0]:>21} {cells[1]:>9} {cells[2]:>24} {cells[3]:>9}   {PEER_OF[title]}")
        print()
        print("Peer: a bare Streamlit app (no store, no model) in the same browser")
        print(f"{'page':<10} {head}")
        for title, a, b, c, d in peer.values():
            print(f"{title:<10} {a:>21.2f} {b:>9.2f} {c:>24.2f} {d:>9.2f}")
    if not args.skip_umap:
        print()
        print(f"first UMAP in a fresh process: {args.umap_points:,} random 384-d points…", flush=True)
        t_import, t_fit, total = umap_bench(args.umap_points)
        verdict = "within" if total < 60 else "OVER"
        print(f"import {t_import:.1f} s + UMAP {t_fit:.1f} s = {total:.1f} s ({verdict} the 60 s goal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
