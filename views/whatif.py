"""What-if: boost or damp category pairs A → B and/or change the fusion weights, then see which items enter
and leave users' lists, how many users change, and what it does on held-out data (each difference with its
95 % interval), rule by rule. Save as scenarios; promote a scenario's rules to the live rules after seeing
its held-out effect (undo on the History page)."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crossrec_core import governance
from crossrec_core.signals.registry import names as signal_names
from crossrec_core.scorer import PairRule, Rules
from ui import charts, serving, state, words
from ui.actions import act, show_done
from ui.deltas import show_deltas, verdict
from ui.fmt import MODE_LABELS, fmt_int, fmt_weights
from ui.progress import with_progress
from ui.segments import saved_names, segment_users
from ui.text import ht, md

st.title("What-if")
store = state.store()
state.require_data()
rec = serving.require_recommender()
from crossrec_core import deltas as deltas_mod, whatif  # noqa: E402  (after the empty states: needs a run anyway)

options = state.category_options(state.categories())
EMPTY = pd.DataFrame({"source": pd.Series(dtype=object), "target": pd.Series(dtype=object),
                      "multiplier": pd.Series(dtype=float)})
ss = st.session_state
# Every widget below takes its starting value from here and none passes its own default, so loading a
# scenario (which sets these keys) never meets a widget default (Streamlit warns about both).
for key_, start in (("wi_rules", EMPTY.copy()), ("wi_v", 0), ("wi_use_w", False), ("wi_n", 300), ("wi_k", 20),
                    ("wi_mode", "all"), ("wi_m", 2.0), ("wi_eval", True), ("wi_who", "a seeded sample"),
                    *((f"wi_w_{s}", float(rec.weights.get(s, 0.0))) for s in signal_names())):
    ss.setdefault(key_, start)


def significant_drops(deltas: dict, k: int) -> list[str]:
    """The metrics (in plain words) whose change is below 0 with its whole 95 % interval."""
    return [words.word(m, k) for m, d in deltas.items() if m in ("recall", "ndcg", "cross_recall") and d["high"] < 0]


def add_pair() -> None:
    row = pd.DataFrame([{"source": ss["wi_a"], "target": ss["wi_b"], "multiplier": float(ss["wi_m"])}])
    ss["wi_rules"] = pd.concat([ss.get("wi_current", ss["wi_rules"]), row], ignore_index=True)
    ss["wi_v"] += 1


def load_scenario(spec: dict, result: dict | None, name: str) -> None:
    pairs = spec.get("rules", {}).get("pairs", [])
    ss["wi_rules"] = pd.DataFrame(pairs, columns=["source", "target", "multiplier"]) if pairs else EMPTY.copy()
    ss["wi_v"] += 1
    ss["wi_use_w"] = spec.get("weights") is not None
    for s in signal_names():
        ss[f"wi_w_{s}"] = float((spec.get("weights") or rec.weights).get(s, 0.0))
    ss["wi_n"], ss["wi_k"], ss["wi_mode"] = spec.get("users", 300), spec.get("k", 20), spec.get("mode", "all")
    ss["wi_result"] = {"spec": spec, "result": result, "name": name} if result else None


def save_scenario(out: dict) -> None:
    name = ss["wi_name"].strip()
    store.save_scenario(name, out["spec"], out["result"])
    out["name"] = name


# ---- the scenario ------------------------------------------------------------------------------------
left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Category pairs")
    a, b, m = st.columns([3, 3, 2], vertical_alignment="bottom")
    a.selectbox("Buyers of A", options, key="wi_a")
    b.selectbox("… see B items", options, index=min(1, len(options) - 1), key="wi_b")
    m.number_input("× multiplier", 0.0, 5.0, step=0.25, key="wi_m",
                   help="1 = no change, 2 = double B's scores for A's buyers, 0.5 = halve, 0 = never show B")
    # On its own row, left, above the table: the table's toolbar (top right, shown near the pointer) never covers it
    st.button("Add pair", on_click=add_pair, icon=":material/add:", key="wi_add", help="Add this pair to the rules")
    edited = st.data_editor(
        ss["wi_rules"], key=f"wi_editor_{ss['wi_v']}", num_rows="dynamic", hide_index=True,
        column_config={
            "source": st.column_config.SelectboxColumn("A (users with history in)", options=options, required=True),
            "target": st.column_config.SelectboxColumn("B (items of)", options=options, required=True),
            "multiplier": st.column_config.NumberColumn("×", min_value=0.0, max_value=5.0, step=0.05,
                                                        format="%.2f", required=True)})
    ss["wi_current"] = edited
    pairs = edited.dropna()
    st.caption(f"{len(pairs)} pair rule(s). Edit cells, or select a row and press Delete to remove it.")
with right:
    st.subheader("Fusion weights")
    use_w = st.toggle("Change the weights too", key="wi_use_w")
    weights = None
    if use_w:
        weights = {}
        wcols = st.columns(2)
        for n, s in enumerate(signal_names()):
            weights[s] = wcols[n % 2].slider(charts.SIGNAL_LABELS[s], 0.0, 1.0, step=0.05, key=f"wi_w_{s}",
                                             help=f"signal '{s}'; serving weight {rec.weights.get(s, 0):.2f}")
    else:
        st.caption("Serving weights: " + fmt_weights(rec.weights))

# Two rows, so "New categories only" and "Held-out metrics" keep their whole labels at 1280 px
c0, c1, c2 = st.columns([2, 2, 1], vertical_alignment="bottom")
c3, c4 = st.columns([3, 2], vertical_alignment="bottom")
who = c0.selectbox("Shoppers", ["a seeded sample", *saved_names()], key="wi_who",
                   help="a seeded sample of shoppers, or a saved segment (Segments page)")
n_users = c1.slider("Users to simulate (seeded sample)", 100, 2000, step=100, key="wi_n",
                    disabled=who != "a seeded sample")
k = c2.number_input("K", 5, 50, step=5, key="wi_k")
mode = c3.segmented_control("Lists", ["all", "cross"], key="wi_mode", format_func=MODE_LABELS.get)
held_out = c4.checkbox("Held-out metrics", key="wi_eval", help="measure the effect on later buys of held-out "
                       "shoppers (slower the first time: the models are fitted on the training period once)")
ready = len(pairs) > 0 or weights is not None
if st.button("Run what-if", type="primary", disabled=not ready, icon=":material/play_arrow:", key="wi_run"):
    rules = Rules(pairs=[PairRule(str(r.source), str(r.target), float(r.multiplier)) for r in pairs.itertuples()])
    spec = {"rules": rules.to_dict(), "weights": weights, "users": int(n_users), "k": int(k), "mode": mode or "all"}
    sim_users = (whatif.sample_users(rec, int(n_users), state.settings().seed) if who == "a seeded sample"
                 else segment_users(who))
    res = with_progress(lambda progress: whatif.simulate(
        rec, rules, weights, users=sim_users, k=int(k),
        mode=mode or "all", evaluate=held_out, progress=progress))
    if res is not None:
        d = res.to_dict()
        d["items_in_total"], d["items_out_total"] = len(res.items_in), len(res.items_out)
        ss["wi_result"] = {"spec": spec, "result": d, "name": None}
if not ready:
    st.caption("Add a category pair or change the weights, then run.")

# ---- the result --------------------------------------------------------------------------------------
out = ss.get("wi_result")
if out:
    d = out["result"]
    st.subheader("Result" + (f": scenario {md(out['name'])} (saved)" if out.get("name") else ""))
    total, hit = d["users_total"], d["users_affected"]
    r = st.columns(3)
    r[0].metric("Users affected", f"{hit:,} of {total:,}", f"{hit / total:.0%} of the sample" if total else None,
                delta_color="off", delta_arrow="off", border=True)
    r[1].metric("Items entering lists", fmt_int(d.get("items_in_total", len(d["items_in"]))), border=True)
    r[2].metric("Items leaving lists", fmt_int(d.get("items_out_total", len(d["items_out"]))), border=True)
    kk = int(out["spec"].get("k", 20))
    if d.get("deltas"):
        show_deltas(d["deltas"], "live lists", "scenario", kk, key="wi_deltas")
        st.caption("Both scored by models fitted on the training period of the time split, on its held-out period.")
        if st.button("Break the effect down by rule", icon=":material/splitscreen:", key="wi_breakdown"):
            rules_ = Rules.from_dict(out["spec"].get("rules"))
            rows = with_progress(lambda progress: deltas_mod.rule_breakdown(
                rec, rules_, out["spec"].get("weights"), k=kk, progress=progress))
            out["breakdown"] = [{"rule": b["rule"], "metric": words.word(m, kk), "change": v["diff"],
                                 "95 % interval": f"{v['low']:+.4f} to {v['high']:+.4f}", "verdict": verdict(v)}
                                for b in rows or [] for m, v in b["deltas"].items()
                                if m in ("recall", "ndcg", "cross_recall")]
        if out.get("breakdown"):
            st.caption(f"Each rule alone on top of the live lists (same held-out shoppers; '{words.NO_DIFFERENCE}' when its "
                       "interval crosses 0)")
            st.dataframe(pd.DataFrame(out["breakdown"]), hide_index=True, key="wi_breakdown_table",
                         column_config={"change": st.column_config.NumberColumn(format="%+.4f")})
    elif out["spec"].get("k") and d.get("metric_delta"):
        st.caption("This saved result has no intervals: run the what-if again to measure them.")
    ins, outs = pd.DataFrame(d["items_in"]), pd.DataFrame(d["items_out"])
    if ins.empty and outs.empty:
        st.info("No list changed for these users: the pairs may not apply to them (no history in A), or the "
                "change is too small to move items in or out of the top K.")
    else:
        top_in, top_out = ins.head(12), outs.head(12)
        fig = go.Figure()
        fig.add_bar(y=top_in["title"].map(lambda t: ht(t, 45)), x=top_in["users"], orientation="h", name="entering",
                    marker_color="#16a34a", customdata=top_in["category"].map(ht),
                    hovertemplate="%{y}<br>%{customdata}<br>enters %{x} lists<extra></extra>")
        fig.add_bar(y=top_out["title"].map(lambda t: ht(t, 45)), x=-top_out["users"], orientation="h",
                    name="leaving", marker_color="#dc2626",
                    customdata=list(zip(top_out["category"].map(ht), top_out["users"])),
                    hovertemplate="%{y}<br>%{customdata[0]}<br>leaves %{customdata[1]} lists<extra></extra>")
        fig.update_layout(barmode="relative", yaxis=dict(autorange="reversed", automargin=True),
                          xaxis_title="users whose list it enters (+) or leaves (−)")
        charts.plot(charts.style(fig, height=max(300, 22 * (len(top_in) + len(top_out)) + 80)), key="wi_chart")
        t1, t2 = st.columns(2)
        cfg = {"title": st.column_config.TextColumn("Item", width="large"),
               "users": st.column_config.NumberColumn("Users", format="%d"),
               "item_id": st.column_config.TextColumn("Item id", width="small"),
               "category": st.column_config.TextColumn("Category")}
        t1.caption("Entering lists")
        t1.dataframe(ins, hide_index=True, column_config=cfg, height=300)
        t2.caption("Leaving lists")
        t2.dataframe(outs, hide_index=True, column_config=cfg, height=300)
    if not out.get("name"):
        s1, s2 = st.columns([3, 1], vertical_alignment="bottom")
        name = s1.text_input("Scenario name", key="wi_name", placeholder="e.g. boost cameras → lenses")
        s2.button("Save scenario", disabled=not name.strip(), icon=":material/save:", key="wi_save",
                  on_click=save_scenario, args=(out,))  # saved before the page draws: the list below has it

# ---- saved scenarios ---------------------------------------------------------------------------------
st.subheader("Saved scenarios")
saved = state.scenarios()
if saved.empty:
    st.caption("None yet: run a what-if and save it.")
else:
    def describe(spec: dict) -> str:
        pairs = [f"{p['source']} → {p['target']} ×{p['multiplier']:g}" for p in spec.get("rules", {}).get("pairs", [])]
        return "; ".join(pairs) + (" + new weights" if spec.get("weights") else "")

    table = pd.DataFrame({"name": saved["name"], "created": saved["created_at"], "scenario": saved["spec"].map(describe),
                          "users affected": saved["result"].map(lambda r: f"{r['users_affected']} of {r['users_total']}"
                                                                if isinstance(r, dict) else "–")})
    st.dataframe(table, hide_index=True)
    p1, p2, p3 = st.columns([3, 1, 2], vertical_alignment="bottom")
    pick = p1.selectbox("Scenario", saved["name"].tolist(), key="wi_pick")
    row = saved[saved["name"] == pick].iloc[0]
    p2.button("Load", on_click=load_scenario, args=(row["spec"], row["result"], pick), icon=":material/upload:",
              key="wi_load")
    sure = p3.checkbox(f"Yes, delete {md(pick)}", key=f"wi_delete_confirm_{pick}")
    if p3.button("Delete", icon=":material/delete:", key="wi_delete", disabled=not sure):
        act(lambda: store.delete_scenario(pick), f"Deleted scenario '{pick}'.", slot="wi_del")
    with p3:
        show_done("wi_del")

    with st.container(border=True):
        st.markdown(f"**Promote {md(pick)} to the live rules**")
        st.caption("Adds the scenario's category pairs to the live rule set, so every list, export and what-if "
                   "uses them. Its weights are not rules: train a run with them on the Runs page instead.")
        effects = ss.setdefault("wi_effects", {})
        promoted = ss.setdefault("wi_promoted", {})  # scenario -> the effect shown when it was promoted
        eff_key = (pick, serving.rec_key())
        live_now = any(r.name.startswith(f"{pick}: ") for r in governance.rule_list(store))
        if live_now and pick in promoted:  # promoted here: say so with what was measured, measure nothing again
            eff = promoted[pick]
            st.markdown(f":green-badge[:material/check: live] Its {len(eff['rules'])} rule(s) are in the live rules.")
            show_done("promote")
            st.text("Rules it added:\n" + "\n".join(f"  {r}" for r in eff["rules"]))
            show_deltas(eff["deltas"], "live lists", "with the scenario", rec.settings.evaluation.k, key="wi_effect_deltas")
        else:
            if st.button("Show its held-out effect first", icon=":material/query_stats:", key="wi_effect"):
                eff = with_progress(lambda progress: governance.scenario_effect(store, pick, rec, progress=progress))
                if eff is not None:
                    effects[eff_key] = eff
            eff = effects.get(eff_key)
            if eff is not None:
                st.text("Rules it adds:\n" + "\n".join(f"  {r}" for r in eff["rules"]))
                show_deltas(eff["deltas"], "live lists", "with the scenario", rec.settings.evaluation.k, key="wi_effect_deltas")
                ok = st.checkbox(f"Yes, add these {len(eff['rules'])} rule(s) to the live rules",
                                 key=f"wi_promote_ok_{pick}")
                drops = significant_drops(eff["deltas"], rec.settings.evaluation.k)
                if drops:  # an interval wholly below 0: not noise, a real loss; a second, explicit yes
                    ok = st.checkbox(f"Yes, promote even though {' and '.join(drops)} drop(s) beyond noise",
                                     key=f"wi_promote_drop_ok_{pick}") and ok
                if st.button("Promote to live rules", type="primary", disabled=not ok, icon=":material/rocket_launch:",
                             key="wi_promote"):
                    def promote() -> None:
                        governance.promote_scenario(store, pick)
                        promoted[pick] = eff

                    act(promote, f"Scenario '{pick}' is live: its rules apply to every list, export and what-if. "
                                 "Undo it on the History page or the Rules page.", slot="promote")
            else:
                st.caption("Measure its effect first; the promote button comes with it.")
