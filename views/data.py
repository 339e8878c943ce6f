"""Data: upload items / events / users (CSV or Parquet), check them, then load them in one transaction.

An upload is copied to a temporary file as it arrives (a megabyte at a time) and checked and loaded from
there by the same code as `crossrec ingest`: no copy of it is kept in the page's caches."""
import json
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from crossrec_core.errors import CrossRecError, ValidationError
from crossrec_core.ingest import (IngestReport, read_table, validate_events, validate_items, validate_users,
                                  MEMORY_PER_UPLOAD_BYTE)
from crossrec_core.ingest_errors import MAX_ERRORS, collect_errors
from ui import state
from ui.fmt import fmt_int
from ui.progress import with_progress
from ui.text import error, md

KINDS = {
    "items": "`item_id`, `title`, `category` (a path such as `Home > Kitchen > Knives`); optional `description`, "
             "`brand`, `price`",
    "events": "`user_id`, `item_id`, `event_type` (view, click, cart, purchase, review), `timestamp` (ISO 8601 "
              "or Unix seconds); optional `value`",
    "users": "`user_id`; optional `profile_text` and other attributes",
}
TYPES = ["csv", "tsv", "txt", "parquet", "pq"]


def spool(upload) -> Path:
    """The upload as a file on disk (written once per upload, under its own base name in a private folder)."""
    files = st.session_state.setdefault("upload_files", {})
    path = files.get(upload.file_id)
    if path is None or not Path(path).exists():
        name = Path(upload.name).name
        if name in ("", ".", "..") or re.search(r"[\x00-\x1f]", name):
            name = "upload" + Path(upload.name).suffix
        path = Path(tempfile.mkdtemp(prefix="crossrec-upload-")) / name
        upload.seek(0)
        with open(path, "wb") as out:
            shutil.copyfileobj(upload, out, 1 << 20)
        files[upload.file_id] = str(path)
    return Path(path)


def forget_uploads(keep: set[str]) -> None:
    """Remove the temporary copies of uploads no longer in the boxes."""
    files = st.session_state.get("upload_files", {})
    for file_id in [f for f in files if f not in keep]:
        shutil.rmtree(Path(files.pop(file_id)).parent, ignore_errors=True)


@st.cache_data(show_spinner="Checking the file…", max_entries=12)
def check(path: str, kind: str, size: int) -> dict:
    """Parse and validate one upload like the ingest will; a preview, or every error (up to MAX_ERRORS) with
    its file, line and column."""
    settings = state.settings()
    report = IngestReport()
    validate = {"items": lambda t: validate_items(t, settings)[0], "users": lambda t: validate_users(t, settings)[0],
                "events": lambda t: validate_events(t, settings, report)}[kind]
    try:
        table = read_table(path, kind)  # a file it cannot read is one error
        errors = collect_errors(table, validate)
        clean = None if errors else validate(table)
    except ValidationError as exc:
        errors = [exc]
    except CrossRecError as exc:
        return {"errors": [{"file": Path(path).name, "line": None, "column": None, "error": str(exc)}]}
    if errors:
        return {"errors": [{"file": e.file, "line": e.line, "column": e.column, "error": str(e)} for e in errors]}
    preview = clean.drop(columns=[c for c in ("attrs",) if c in clean]).head(50)
    return {"errors": [], "rows": len(table.frame), "clean": len(clean), "preview": preview, "notes": report.lines()}


st.title("Data")
store = state.store()
st.caption("Load your shop's files. Each file is checked as soon as it is uploaded; nothing is loaded while "
           "any file has an error, and a load is all-or-nothing. Loading the same rows twice adds nothing twice.")

limit_mb = int(st.get_option("server.maxUploadSize"))
st.caption(f"Files up to {limit_mb:,} MB each (`server.maxUploadSize` in `.streamlit/config.toml`). Checking and "
           f"loading a file takes about {MEMORY_PER_UPLOAD_BYTE}× its size in server memory; load larger files "
           "with `crossrec ingest`, which reads them from disk the same way.")

uploads, results = {}, {}
cols = st.columns(3, gap="medium")
for col, (kind, contract) in zip(cols, KINDS.items()):
    with col:
        f = st.file_uploader(f"{kind.capitalize()} file", type=TYPES, key=f"upload_{kind}")
        st.caption(contract)
        if f is not None:
            path = spool(f)
            uploads[kind] = (path, f.file_id)
            results[kind] = check(str(path), kind, f.size)
forget_uploads({file_id for _, file_id in uploads.values()})

if not uploads:
    st.info("Upload at least one file. Events need their items in the catalog (already loaded, or in the items "
            "file uploaded beside them).", icon=":material/upload_file:")

errors = {k: r for k, r in results.items() if r["errors"]}
for kind, r in results.items():
    name = uploads[kind][0].name
    if r["errors"]:
        found = r["errors"]
        if len(found) == 1:
            error(f"{kind}: {found[0]['error']}", icon=":material/error:")
        else:
            more = f" (the first {MAX_ERRORS}; there may be more)" if len(found) >= MAX_ERRORS else ""
            error(f"{kind}: {len(found)} rows with errors{more}; the first: {found[0]['error']}",
                  icon=":material/error:")
        st.dataframe(pd.DataFrame(found, columns=["file", "line", "column", "error"]), hide_index=True,
                     key=f"errors_{kind}", column_config={
                         "line": st.column_config.NumberColumn("Line", format="%d", width="small"),
                         "column": st.column_config.TextColumn("Column", width="small"),
                         "error": st.column_config.TextColumn("Error", width="large")})
    else:
        with st.expander(f"{kind}: {md(name)} · {fmt_int(r['rows'])} rows read, {fmt_int(r['clean'])} loadable",
                         expanded=True):
            st.dataframe(r["preview"], hide_index=True, height=240)
            for line in r["notes"]:
                st.text(line)

if uploads:
    label = "Ingest " + " + ".join(uploads)
    disabled = bool(errors)
    if disabled:
        st.warning("Fix the errors above and upload again: nothing is loaded while a file has an error.")
    if st.button(label, type="primary", disabled=disabled, icon=":material/database:", key="ingest"):
        paths = {k: path for k, (path, _) in uploads.items()}
        report = with_progress(lambda progress: store.ingest_files(
            paths.get("items"), paths.get("events"), paths.get("users"), settings=state.settings(), progress=progress,
            label=", ".join(p.name for p in paths.values())), "loading")
        if report is not None:
            st.session_state["last_ingest"] = report.lines()

if st.session_state.get("last_ingest"):
    with st.container(border=True):
        st.markdown("**Loaded.** Lists already use the new events; retrain so the models learn from them.")
        for line in st.session_state["last_ingest"]:
            st.text(line)
        st.page_link("views/runs.py", label="Retrain on the Runs page", icon=":material/model_training:")

st.subheader("Item text vectors")
st.caption("Text similarity, cold-start lists, search and the Map need every item's text encoded. Only new or "
           "changed texts are encoded (same as `crossrec encode`); then retrain so the run uses them.")
if st.button("Encode new item texts", icon=":material/text_fields:", key="encode"):
    from crossrec_core.encoder import Encoder, encode_items

    cfg = state.settings()
    res = with_progress(lambda progress: encode_items(
        store, Encoder.from_settings(cfg),
        progress=progress))
    if res is not None:
        st.success(f"{res.encoded:,} texts encoded, {res.reused:,} already stored ({res.seconds:.1f} s).")

st.subheader("Remove events")
st.caption("Remove the events matching every filter given, in one transaction (e.g. an outlier timestamp that "
           "leaves the time split nothing to learn from); the same as `crossrec events delete`. Then retrain.")
d = st.columns(4)
filters = {"before": d[0].text_input("Before (UTC)", placeholder="e.g. 1995-01-01", key="del_before"),
           "after": d[1].text_input("After (UTC)", placeholder="e.g. 2030-01-01", key="del_after"),
           "user": d[2].text_input("User id", key="del_user"),
           "item": d[3].text_input("Item id", key="del_item")}
filters = {k: v.strip() or None for k, v in filters.items()}
if any(filters.values()):
    try:
        matching = store.count_events(**filters)
    except CrossRecError as exc:
        error(exc)
        matching = None
    if matching is not None:
        confirm = st.checkbox(f"Yes, remove these {matching:,} events (this cannot be undone)", disabled=not matching,
                              key=f"del_confirm_{hash(tuple(filters.values()))}")
        if st.button("Remove events", disabled=not confirm, icon=":material/delete:", key="del_events"):
            removed = store.delete_events(**filters)
            st.session_state["last_removed"] = removed
            st.rerun()
if st.session_state.get("last_removed") is not None:
    st.success(f"Removed {st.session_state.pop('last_removed'):,} events. Retrain on the Runs page.")

st.subheader("Load history")
log = store.ingest_log()
if log.empty:
    st.caption("Nothing loaded yet.")
else:
    def summary(rep: str) -> str:
        try:
            r = IngestReport(**{k: v for k, v in json.loads(rep).items() if k in IngestReport.__dataclass_fields__})
        except Exception:  # an older report shape: show it raw
            return str(rep)
        return " · ".join(r.lines())

    log = log.assign(summary=log["report"].map(summary)).drop(columns=["report"])
    st.dataframe(log, hide_index=True, column_config={
        "loaded_at": st.column_config.DatetimeColumn("Loaded", format="YYYY-MM-DD HH:mm"),
        "files": st.column_config.TextColumn("Files"), "summary": st.column_config.TextColumn("What it did", width="large")})
