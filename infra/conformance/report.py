"""`kfstack report`: one self-contained HTML page drawn from the conformance history.

Pictures are drawn with matplotlib as inline SVG (text kept as text, no scripts, no external
references), so the page opens offline, from a CI artifact, and can be searched and tested.

The regression flag compares each phase of a stack's latest `pulumi up` with the same phase in
its previous runs (same stack, same release, at most `BASELINE_RUNS`, at least `MIN_BASELINE`):
flagged when slower than the baseline median by more than the largest of three robust standard
deviations (1.4826 x the median absolute deviation: the normal-equivalent spread, so noise the
history itself shows does not flag), a quarter of the median (a hosted or shared runner's load
moves whole runs by tens of percent between nights, docs/benchmarks.md), and 5 seconds (phases of a
few seconds vary by whole seconds with nothing wrong).
"""

from __future__ import annotations

import datetime as dt
import html
import io
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from infra.apply import PHASES
from infra.conformance.record import RunRecord

BASELINE_RUNS = 10
MIN_BASELINE = 3
MAD_FACTOR = 3 * 1.4826
RELATIVE_MARGIN = 0.25
ABSOLUTE_MARGIN_S = 5.0
PHASE_ORDER = ("cluster", *PHASES, "other")
OUTCOME_COLORS = {"passed": "#2e7d32", "failed": "#c62828", "error": "#8e24aa", "skipped": "#9e9e9e",
                  "absent": "#ffffff"}
OUTCOME_MARKS = {"passed": "✓", "failed": "✗", "error": "E", "skipped": "-"}


@dataclass(frozen=True)
class Regression:
    stack: str
    up: str
    phase: str
    latest: float
    median: float
    threshold: float
    baseline: int  # how many earlier runs the median is taken over

    @property
    def flagged(self) -> bool:
        return self.latest > self.threshold


def threshold_for(values: Sequence[float]) -> tuple[float, float]:
    """(median, threshold) of a baseline: the margin is explained in the module docstring."""
    median = statistics.median(values)
    mad = statistics.median(abs(v - median) for v in values)
    return median, median + max(MAD_FACTOR * mad, RELATIVE_MARGIN * median, ABSOLUTE_MARGIN_S)


def regressions(runs: Sequence[RunRecord]) -> list[Regression]:
    """Every phase of each stack's latest `pulumi up` of each kind ("up", "upgrade", ...) compared
    with its baseline (flagged or not)."""
    found: list[Regression] = []
    for stack in sorted({r.stack for r in runs}):
        mine = [r for r in runs if r.stack == stack]
        for up in dict.fromkeys(u for r in mine for u in r.phases if r.phases[u]):
            with_up = [r for r in mine if r.phases.get(up)]
            latest = with_up[-1]
            earlier = [r for r in with_up[:-1] if r.release == latest.release][-BASELINE_RUNS:]
            for phase, seconds in latest.phases[up].items():
                values = [r.phases[up][phase] for r in earlier if phase in r.phases[up]]
                if len(values) < MIN_BASELINE:
                    continue
                median, threshold = threshold_for(values)
                found.append(Regression(stack, up, phase, seconds, round(median, 2), round(threshold, 2),
                                        len(values)))
    return found


# ------------------------------------------------------------------------------------------------
# Pictures


def _svg(fig: object) -> str:
    """A matplotlib figure as an inline <svg> element (no XML prolog, no creator metadata)."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight",  # type: ignore[attr-defined]
                metadata={"Creator": None, "Date": None, "Format": None, "Type": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _figure(width: float, height: float) -> object:
    import matplotlib

    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, testable
    matplotlib.rcParams["svg.hashsalt"] = "kubeflow-stacks"  # stable ids: same history, same page
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _short(run_id: str) -> str:
    return run_id[4:8] + " " + run_id[9:13]  # MMDD HHMM


def checks_figure(runs: Sequence[RunRecord], check_ids: Sequence[str]) -> str:
    """Pass/fail per check (rows) over runs (columns)."""
    from matplotlib.colors import ListedColormap

    order = list(OUTCOME_COLORS)
    grid = [[order.index(next((c.outcome for c in r.checks if c.id == cid), "absent")) for r in runs]
            for cid in check_ids]
    fig = _figure(min(2 + 0.45 * len(runs), 16), 0.8 + 0.28 * len(check_ids))
    ax = fig.add_subplot()  # type: ignore[attr-defined]
    ax.imshow(grid, cmap=ListedColormap(list(OUTCOME_COLORS.values())), vmin=0, vmax=len(order) - 1,
              aspect="auto", interpolation="nearest")
    ax.set_yticks(range(len(check_ids)), [c.split("::", 1)[-1] for c in check_ids], fontsize=7)
    ax.set_xticks(range(len(runs)), [f"{_short(r.run_id)}\n{r.stack}" for r in runs], fontsize=7, rotation=90)
    ax.set_title("checks over runs: green passed, red failed, purple error, grey not run, white absent",
                 fontsize=8)
    return _svg(fig)


def phases_figure(runs: Sequence[RunRecord], up: str) -> str:
    """`pulumi up` seconds per phase over runs, stacked."""
    rows = [r for r in runs if r.phases.get(up)]
    phases = [p for p in PHASE_ORDER if any(p in r.phases[up] for r in rows)]
    fig = _figure(min(3 + 0.5 * len(rows), 16), 4)
    ax = fig.add_subplot()  # type: ignore[attr-defined]
    bottom = [0.0] * len(rows)
    cmap = _phase_colors()
    for phase in phases:
        values = [r.phases[up].get(phase, 0.0) for r in rows]
        ax.bar(range(len(rows)), values, bottom=bottom, label=phase, color=cmap[phase])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(range(len(rows)), [f"{_short(r.run_id)}\n{r.stack}" for r in rows], fontsize=7, rotation=90)
    ax.set_ylabel("seconds")
    ax.set_title(f"pulumi up ({up}) by phase over runs", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(fig)


def _phase_colors() -> dict[str, tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    return {p: cmap(i / max(1, len(PHASE_ORDER) - 1)) for i, p in enumerate(PHASE_ORDER)}


def timeline_figure(record: RunRecord, up: str) -> str:
    """Every resource's start and finish in one `pulumi up`, grouped by phase."""
    rows = sorted(record.timelines.get(up) or [],
                  key=lambda r: (PHASE_ORDER.index(r["phase"]) if r["phase"] in PHASE_ORDER else 99, r["start"]))
    colors = _phase_colors()
    fig = _figure(11, 1.5 + min(0.012 * len(rows), 9))
    ax = fig.add_subplot()  # type: ignore[attr-defined]
    for i, row in enumerate(rows):
        ax.barh(i, max(row["end"] - row["start"], 0.05), left=row["start"], height=0.9,
                color=colors.get(row["phase"], "#555555"))
    ticks, labels, start = [], [], 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i]["phase"] != rows[start]["phase"]:
            ticks.append((start + i - 1) / 2)
            labels.append(f"{rows[start]['phase']} ({i - start})")
            start = i
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the start of the update")
    ax.set_title(f"{record.run_id}: pulumi up ({up}), {len(rows)} resources, grouped by phase", fontsize=9)
    return _svg(fig)


# ------------------------------------------------------------------------------------------------
# The page

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .5em;font-size:.85em}
th{background:#f4f4f4}.passed{color:#2e7d32}.failed,.error{color:#c62828;font-weight:bold}.skipped{color:#777}
.flag{background:#ffebee;font-weight:bold}code{font-size:.9em}svg{max-width:100%;height:auto}
"""


def _e(text: object) -> str:
    return html.escape(str(text))


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], row_classes: Sequence[str] = ()) -> str:
    out = ["<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if i < len(row_classes) and row_classes[i] else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return "\n".join(out) + "</table>"


def report_html(runs: Sequence[RunRecord], source: str = "") -> str:
    """The page for these runs (oldest first)."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Kubeflow conformance "
             f"history</title><style>{STYLE}</style></head><body>",
             "<h1>Kubeflow conformance history</h1>",
             f"<p>{len(runs)} run(s) of {len({r.stack for r in runs})} stack(s); generated {now}"
             + (f" from <code>{_e(source)}</code>" if source else "") + ".</p>"]
    if not runs:
        return "\n".join([*parts, "<p>No runs recorded yet.</p></body></html>"])
    parts += ["<h2>Latest run of each stack</h2>", _latest_table(runs)]
    parts += ["<h2>Regressions</h2>", _regressions_section(runs)]
    check_ids = list(dict.fromkeys(c.id for r in runs for c in r.checks))
    parts += ["<h2>Checks over runs</h2>"]
    if check_ids:
        parts += [checks_figure(runs, check_ids), _checks_table(runs, check_ids)]
    else:
        parts.append("<p>No check results recorded.</p>")
    ups = list(dict.fromkeys(up for r in runs for up in r.phases if r.phases[up]))
    for up in ups:
        parts += [f"<h2>pulumi up ({_e(up)}) by phase over runs</h2>", phases_figure(runs, up), _phases_table(runs, up)]
    latest = next((r for r in reversed(runs) if any(r.timelines.values())), None)
    if latest is not None:
        up = [u for u, rows in latest.timelines.items() if rows][-1]
        parts += [f"<h2>Timeline of the latest pulumi up (run {_e(latest.run_id)}, {_e(up)})</h2>",
                  timeline_figure(latest, up)]
    parts.append("</body></html>")
    return "\n".join(parts)


def _latest_table(runs: Sequence[RunRecord]) -> str:
    rows, classes = [], []
    for stack in sorted({r.stack for r in runs}):
        r = [x for x in runs if x.stack == stack][-1]
        failed = [c.id for c in r.checks if c.failed]
        rows.append([_e(stack), _e(r.run_id), _e(r.release), f'<span class="{r.status}">{_e(r.status)}</span>',
                     _e(r.exit_code), _e(r.failed_step or ""), "<br>".join(f"<code>{_e(f)}</code>" for f in failed),
                     "<br>".join(_e(x) for x in r.teardown_left)])
        classes.append("flag" if r.status != "passed" else "")
    return _table(["stack", "run", "release", "result", "exit", "failed step", "failed checks", "left by teardown"],
                  rows, classes)


def _regressions_section(runs: Sequence[RunRecord]) -> str:
    found = regressions(runs)
    if not found:
        return (f"<p>Not enough history: a phase is compared once {MIN_BASELINE} earlier runs of the same "
                "stack and release recorded it.</p>")
    flagged = [r for r in found if r.flagged]
    head = (f"<p><strong>REGRESSION: {len(flagged)} phase(s) slower than their baseline.</strong></p>" if flagged
            else "<p>No regression: every phase of the latest runs is within its margin.</p>")
    rule = (f"<p>Flagged when the latest time exceeds the median of up to {BASELINE_RUNS} earlier runs by more than "
            f"max({MAD_FACTOR:.2f} x MAD, {RELATIVE_MARGIN:.0%} of the median, {ABSOLUTE_MARGIN_S:.0f} s).</p>")
    rows = [[_e(r.stack), _e(r.up), _e(r.phase), f"{r.latest:.1f}", f"{r.median:.1f}", f"{r.threshold:.1f}",
             _e(r.baseline), "REGRESSION" if r.flagged else "ok"] for r in found]
    return head + rule + _table(["stack", "up", "phase", "latest s", "median s", "threshold s", "runs", "flag"],
                                rows, ["flag" if r.flagged else "" for r in found])


def _checks_table(runs: Sequence[RunRecord], check_ids: Sequence[str]) -> str:
    rows = []
    for cid in check_ids:
        cells = [f"<code>{_e(cid)}</code>"]
        for r in runs:
            c = next((c for c in r.checks if c.id == cid), None)
            cells.append("" if c is None else f'<span class="{c.outcome}" title="{_e(c.message)}">'
                         f'{OUTCOME_MARKS.get(c.outcome, "?")} {_e(c.outcome)}</span>')
        rows.append(cells)
    return _table(["check", *(f"{_short(r.run_id)} {r.stack}" for r in runs)], rows)


def _phases_table(runs: Sequence[RunRecord], up: str) -> str:
    rows_runs = [r for r in runs if r.phases.get(up)]
    phases = [p for p in PHASE_ORDER if any(p in r.phases[up] for r in rows_runs)]
    rows = [[_e(r.run_id), _e(r.stack), *(f"{r.phases[up].get(p, 0):.1f}" for p in phases),
             f"{sum(r.phases[up].values()):.1f}"] for r in rows_runs]
    return _table(["run", "stack", *phases, "total"], rows)


def write_report(histories: Sequence[Path | None], output: Path, stack: str | None = None, last: int = 30) -> Path:
    """Render the runs of one or more histories (each CI job keeps its own) into one page."""
    from infra.conformance.history import History

    runs: dict[str, RunRecord] = {}
    sources = []
    for path in histories or [None]:
        with History.open(path) as hist:
            runs.update({r.run_id: r for r in hist.runs(stack)})
            sources.append(str(hist.path))
    ordered = sorted(runs.values(), key=lambda r: (r.started, r.run_id))[-last:]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(report_html(ordered, ", ".join(sources)), encoding="utf-8")
    return output
