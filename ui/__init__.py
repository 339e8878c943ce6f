"""The dashboard's shared parts, one job per module (the pages live in views/):

- `state`: the process's one store, settings, and cached reads keyed by the store's write counter;
- `serving`: the serving run, its fitted model and cached recommendation lists;
- `flow`: ending a page early and the empty states that say what to do;
- `text`: shop text rendered as text (Markdown and Plotly escaping, one-line messages);
- `fmt`: numbers, dates, durations and weights in plain words;
- `charts`: colours, labels and Plotly styling (the one place for signal colours and labels);
- `lists`: an explained recommendation list (chart, table, evidence);
- `progress`: progress bars for core work that reports progress(fraction, message);
- `training`: the background training job.

Pages import these and crossrec_core; they never write SQL and never compute scores.
"""
