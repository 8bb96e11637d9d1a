"""Findings report for the school's data manager: a CSV file and a self-contained HTML page per run.

Both list each finding's entity, MIS id, field, rule, severity, status (new / still open / fixed, when
``history.update_history`` has added it) and the plain-English hint. The HTML page groups findings by
rule with counts, errors first. Every value is HTML-escaped and nothing is loaded from elsewhere (no
scripts, fonts or stylesheets), so the file can be opened or emailed as it is.

The files hold MIS ids (opaque record keys), never names, UPNs, dates of birth or emails: findings
frames carry none, and these functions only read the finding columns.
"""

from __future__ import annotations

import datetime as dt
import html
import io
from typing import Any, Final

import pandas as pd

from mis_sync.csv_cells import safe_frame
from mis_sync.storage import StoragePath, make_private_dir, open_private

CSV_NAME: Final = "findings.csv"
HTML_NAME: Final = "findings.html"
CSV_COLUMNS: Final = ["entity", "mis_id", "field", "rule", "severity", "status", "hint"]
STATUS_ORDER: Final = ("new", "still open", "fixed")
SEVERITY_ORDER: Final = {"error": 0, "warning": 1}


def _ordered(findings: pd.DataFrame) -> pd.DataFrame:
    frame = findings.copy()
    if "status" not in frame.columns:
        frame["status"] = ""
    frame["_severity"] = frame["severity"].map(SEVERITY_ORDER).fillna(9)
    frame = frame.sort_values(["_severity", "entity", "rule", "mis_id", "field"], kind="stable")
    return frame.drop(columns="_severity").reset_index(drop=True)


def findings_csv(findings: pd.DataFrame) -> str:
    """The findings as CSV text (``CSV_COLUMNS``; ``status`` empty when history is not known)."""
    frame = _ordered(findings)
    buffer = io.StringIO()
    # MIS ids and field names come from the MIS: a cell starting "=" must not run in Excel
    safe_frame(frame[CSV_COLUMNS]).to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;margin:2rem;color:#1b1b1b;
max-width:72rem}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ccc;padding-bottom:.25rem}
table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.92rem}
th,td{border:1px solid #d0d0d0;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}td.n{text-align:right}
.error{color:#a40000;font-weight:600}.warning{color:#8a5a00;font-weight:600}
.new{color:#0b5394;font-weight:600}.fixed{color:#2e7d32}.hint{background:#f7f7f2;padding:.5rem .8rem;
border-left:4px solid #c8c8a0;margin:.4rem 0}.meta{color:#555}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value))


def _status_counts(frame: pd.DataFrame) -> dict[str, int]:
    return {s: int((frame["status"] == s).sum()) for s in STATUS_ORDER}


def render_html(
    findings: pd.DataFrame,
    *,
    establishment_id: str,
    run_id: str,
    generated_at: dt.datetime | None = None,
    summary: dict[str, Any] | None = None,
) -> str:
    """The HTML page as text. ``summary`` (``QualityResult.summary``) adds extract counts if given."""
    frame = _ordered(findings)
    generated = (generated_at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%d %H:%M %Z")
    current = frame[frame["status"] != "fixed"]
    has_status = bool((frame["status"] != "").any())
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>MIS data findings: {_e(establishment_id)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>MIS data findings for {_e(establishment_id)}</h1>",
        f'<p class="meta">Run {_e(run_id)}, {_e(generated)}. Records are named by their MIS id: search '
        "for it in the MIS to find the record.</p>",
        "<p><strong>Errors</strong> keep the record out of the sync until it is fixed in the MIS. "
        "<strong>Warnings</strong> are synced as they are, but should be fixed.</p>",
    ]
    errors = int((current["severity"] == "error").sum())
    warnings = int((current["severity"] == "warning").sum())
    totals = [f"<li>{errors} error(s) and {warnings} warning(s) in this export</li>"]
    if has_status:
        counts = _status_counts(frame)
        totals.append(
            f"<li>{counts['new']} new, {counts['still open']} still open, {counts['fixed']} fixed since the "
            "last run</li>"
        )
    if summary and summary.get("counts"):
        counted = ", ".join(f"{_e(k)} {int(v)}" for k, v in sorted(summary["counts"].items()))
        totals.append(f"<li>Records in the export: {counted}</li>")
    out.append("<ul>" + "".join(totals) + "</ul>")
    if frame.empty:
        out.append("<p>No findings: nothing to fix.</p></body></html>")
        return "\n".join(out)

    groups = frame.groupby(["severity", "entity", "rule"], sort=False)
    out.append("<h2>Summary by rule</h2><table><thead><tr><th>Severity</th><th>Entity</th><th>Rule</th>")
    out.append("<th>Records</th>" + ("<th>New</th><th>Still open</th><th>Fixed</th>" if has_status else ""))
    out.append("</tr></thead><tbody>")
    for (severity, entity, rule), rows in groups:
        cells = [f'<td class="{_e(severity)}">{_e(severity)}</td>', f"<td>{_e(entity)}</td>"]
        cells.append(f'<td><a href="#{_e(f"{entity}-{rule}")}">{_e(rule)}</a></td>')
        cells.append(f'<td class="n">{int((rows["status"] != "fixed").sum())}</td>')
        if has_status:
            cells += [f'<td class="n">{v}</td>' for v in _status_counts(rows).values()]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")

    for (severity, entity, rule), rows in groups:
        out.append(
            f'<h2 id="{_e(f"{entity}-{rule}")}"><span class="{_e(severity)}">{_e(severity)}</span>: '
            f"{_e(entity)} / {_e(rule)} ({len(rows)})</h2>"
        )
        for field, hint in rows[["field", "hint"]].drop_duplicates().itertuples(index=False):
            out.append(f'<div class="hint"><strong>{_e(field)}</strong>: {_e(hint)}</div>')
        head = "<tr><th>MIS id</th><th>Field</th><th>Severity</th>" + (
            "<th>Status</th>" if has_status else ""
        )
        out.append("<table><thead>" + head + "</tr></thead><tbody>")
        for record in rows.itertuples(index=False):
            status = str(record.status)
            cells = [f"<td>{_e(record.mis_id)}</td>", f"<td>{_e(record.field)}</td>"]
            cells.append(f'<td class="{_e(record.severity)}">{_e(record.severity)}</td>')
            if has_status:
                cells.append(f'<td class="{_e(status.replace(" ", "-"))}">{_e(status)}</td>')
            out.append("<tr>" + "".join(cells) + "</tr>")
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out)


def write_report(
    folder: StoragePath,
    findings: pd.DataFrame,
    *,
    establishment_id: str,
    run_id: str,
    generated_at: dt.datetime | None = None,
    summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``findings.csv`` and ``findings.html`` into ``folder``; return names and counts (XCom-safe)."""
    make_private_dir(folder)
    with open_private(folder / CSV_NAME, "wb") as handle:
        handle.write(findings_csv(findings).encode("utf-8"))
    page = render_html(
        findings, establishment_id=establishment_id, run_id=run_id, generated_at=generated_at, summary=summary
    )
    with open_private(folder / HTML_NAME, "wb") as handle:
        handle.write(page.encode("utf-8"))
    return {"csv": CSV_NAME, "html": HTML_NAME, "findings": len(findings)}
