"""collect_errors: every bad row of a file (up to a cap) with its line and column, from the ingest's own checks."""
from __future__ import annotations

from crossrec_core.config import Settings
from crossrec_core.ingest import IngestReport, read_table, validate_events, validate_items
from crossrec_core.ingest_errors import collect_errors


def events_check(table):
    return validate_events(table, Settings(), IngestReport())


def test_four_bad_rows_give_four_errors_with_line_and_column(write):
    path = write("events.csv", "user_id,item_id,event_type,timestamp\n"
                               "u1,i1,view,2024-01-01T00:00:00Z\n"
                               "u2,i2,view,yesterday\n"  # line 3: timestamp
                               ",i3,view,2024-01-02T00:00:00Z\n"  # line 4: user_id empty
                               "u4,i4,view,2024-01-03T00:00:00Z\n"
                               "u5,,view,2024-01-04T00:00:00Z\n"  # line 6: item_id empty
                               "u6,i6,view,soon\n")  # line 7: timestamp
    errors = collect_errors(read_table(path, "events"), events_check)
    assert [(e.line, e.column) for e in sorted(errors, key=lambda e: e.line)] == [
        (3, "timestamp"), (4, "user_id"), (6, "item_id"), (7, "timestamp")]
    assert all(str(e).startswith(f"events.csv line {e.line}, column {e.column}: ") for e in errors)


def test_a_clean_file_has_none_and_the_cap_holds(write):
    good = write("items.csv", "item_id,title,category,price\nA,Tent,Outdoor > Tents,10\n")
    assert collect_errors(read_table(good, "items"), lambda t: validate_items(t, Settings())) == []
    rows = "".join(f"I{n},Tent,Outdoor,-{n + 1}\n" for n in range(80))  # 80 negative prices
    bad = write("many.csv", "item_id,title,category,price\n" + rows)
    errors = collect_errors(read_table(bad, "items"), lambda t: validate_items(t, Settings()), limit=50)
    assert len(errors) == 50 and errors[0].line == 2 and errors[-1].line == 51

