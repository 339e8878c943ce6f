"""A chart's numbers as CSV (ui.charts.figure_table / table_csv): every point of every trace, a Sankey's
links by name, Excel-safe text; and the Overview page offers the download under its charts."""
from __future__ import annotations

import csv
import io

import plotly.graph_objects as go

from ui.charts import figure_table, table_csv


def test_bar_treemap_and_sankey_become_tables():
    bars = go.Figure([go.Bar(name="buyers", x=["Food", "Toys"], y=[3, 5]), go.Bar(name="lift", x=["Food"], y=[1.5])])
    t = figure_table(bars)
    assert t.to_dict("records") == [{"series": "buyers", "x": "Food", "y": 3}, {"series": "buyers", "x": "Toys", "y": 5},
                                    {"series": "lift", "x": "Food", "y": 1.5}]
    tree = figure_table(go.Figure(go.Treemap(labels=["All", "Food"], parents=["", "All"], values=[9, 4])))
    assert tree[["labels", "parents", "values"]].values.tolist() == [["All", "", 9], ["Food", "All", 4]]
    sankey = go.Figure(go.Sankey(node=dict(label=["Baby", "Toys", "Food"]),
                                 link=dict(source=[0, 0], target=[1, 2], value=[7, 2])))
    assert figure_table(sankey)[["source", "target", "value"]].values.tolist() == [["Baby", "Toys", 7], ["Baby", "Food", 2]]


def test_chart_csv_opens_in_excel_without_formulas():
    fig = go.Figure(go.Bar(name="=cmd|' /C calc'!A0", x=["=1+1", "-2", "Tea"], y=[1, 2, 3]))
    data = table_csv(figure_table(fig))
    assert data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["series", "x", "y"]
    assert rows[1][:2] == ["'=cmd|' /C calc'!A0", "'=1+1"] and rows[2][1] == "-2" and rows[3][1] == "Tea"
