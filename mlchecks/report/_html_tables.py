"""The HTML report's tables: a check's ``details``, metrics and findings as real tables.

Values are rendered by their shape, so any check's details read as tables without the
report knowing the check:

- a scalar is formatted text: floats with 4 significant digits, durations (keys ending in
  ``_s``) with their unit (``"6.69 ms"``), the exact value in the cell's ``title``;
- a mapping of scalars is a key/value table;
- a list of mappings (per-slice rows) or a mapping of mappings is a table with a column per
  key, cut at `MAX_ROWS` rows with a note of how many more there are;
- a mapping of equally long lists (a series: ``{"t_s": [...], "outcome": [...]}``) is a
  table with a column per list;
- a list of scalars is a wrapped, scrollable line of values;
- a mapping of other values is a key/value table whose values are rendered the same way,
  two levels deep; deeper or irregular structures are compact JSON in a ``<pre>``.

Every table sits in a ``<div class="mlc-scroll">`` that scrolls sideways inside the card
(and, for a details value, down after 32 lines), so a wide or long table never overflows
it. Every string is escaped.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mlchecks._text import redact
from mlchecks.report._format import clean, fmt_value, is_scalar
from mlchecks.report._units import fmt_with_unit

__all__ = [
    "MAX_ROWS",
    "esc",
    "key_value_table",
    "observed_cell",
    "render",
    "scalar_cell",
    "size_label",
    "table",
]

#: Rows shown per table (and values per list); the rest are counted in a note.
MAX_ROWS = 50
_MAX_VALUES = 200
_MAX_JSON_CHARS = 20_000
_MAX_COLUMNS = 16
_MAX_DEPTH = 2  # nested key/value tables inside a details value
_INLINE_ITEMS = 10  # a short list of scalars in a cell is joined with commas
# A limit judged in seconds ends with its unit (`AtMost.judge(..., unit="s")`): "<= 60 s",
# "in [0.1, 2] s".
_SECONDS_LIMIT = re.compile(r"[\d\]] s$")


def esc(value: object) -> str:
    """``value`` as escaped HTML text (control characters removed, URL passwords hidden)."""
    return html.escape(clean(redact(str(value))), quote=True)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def observed_cell(observed: float | None, limit: str) -> str:
    """A finding's observed value, in seconds when its limit is (``"<= 60 s"``).

    >>> observed_cell(0.0003064, "<= 60 s")
    '<td class="mlc-num" title="0.0003064">306 µs</td>'
    >>> observed_cell(1.5, "in [0.1, 2] s"), observed_cell(0.5, "<= 1 entries")
    ('<td class="mlc-num" title="1.5">1.5 s</td>', '<td class="mlc-num" title="0.5">0.5</td>')
    """
    return scalar_cell(observed, "observed_s" if _SECONDS_LIMIT.search(limit) else "")


def scalar_cell(value: Any, key: str = "") -> str:
    """One ``<td>``: numbers right-aligned with their unit and the exact value as a title."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        text = fmt_with_unit(key, value)
        return f'<td class="mlc-num" title="{esc(value)}">{esc(text)}</td>'
    return f"<td>{esc(fmt_value(value))}</td>"


def _cell(value: Any, key: str) -> str:
    """A table cell for any value: scalars formatted, short lists joined, others JSON."""
    if is_scalar(value):
        return scalar_cell(value, key)
    if isinstance(value, list) and len(value) <= _INLINE_ITEMS and all(map(is_scalar, value)):
        return f"<td>{esc(', '.join(fmt_with_unit(key, v) for v in value))}</td>"
    return f"<td><code>{esc(_json(value))}</code></td>"


def _more(total: int, shown: int, unit: str) -> str:
    if total <= shown:
        return ""
    return f'<p class="mlc-muted">{total - shown} more {unit} not shown.</p>'


def table(header: Sequence[str], rows: Iterable[Sequence[str]], total: int) -> str:
    """A scrollable table from already-rendered ``<td>`` cells, at most `MAX_ROWS` rows."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for shown, cells in enumerate(rows):
        if shown >= MAX_ROWS:
            break
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<div class="mlc-scroll"><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>" + _more(total, len(body), "rows")
    )


def key_value_table(items: Mapping[str, Any], header: tuple[str, str]) -> str:
    """A two-column table of scalars, durations with their unit."""
    rows = ([f"<td>{esc(k)}</td>", scalar_cell(v, str(k))] for k, v in items.items())
    return table(header, rows, len(items))


def _columns(records: Sequence[Any]) -> list[str] | None:
    """The keys of a list of mappings in first-seen order, or None when it is not a table."""
    if not records or not all(isinstance(r, Mapping) for r in records):
        return None
    keys = list(dict.fromkeys(str(k) for r in records for k in r))
    if not keys or len(keys) > _MAX_COLUMNS:
        return None
    return keys


def _series(value: Mapping[str, Any]) -> list[str] | None:
    """The keys of the equally long lists of scalars in ``value`` (a columnar series)."""
    lists = [k for k, v in value.items() if isinstance(v, list)]
    if not lists or len(lists) > _MAX_COLUMNS:
        return None
    if any(not is_scalar(v) for k, v in value.items() if k not in lists):
        return None
    if len({len(value[k]) for k in lists}) != 1 or not value[lists[0]]:
        return None
    if not all(is_scalar(v) for k in lists for v in value[k]):
        return None
    return lists


def _pre_json(value: Any) -> str:
    text = _json(value)
    if len(text) > _MAX_JSON_CHARS:
        cut = len(text) - _MAX_JSON_CHARS
        text = f"{text[:_MAX_JSON_CHARS]} ... ({cut} more characters)"
    return f"<pre>{esc(text)}</pre>"


def _values(values: list[Any], key: str) -> str:
    shown = values[:_MAX_VALUES]
    text = ", ".join(fmt_with_unit(key, v) for v in shown)
    return f'<div class="mlc-values">{esc(text)}</div>' + _more(len(values), len(shown), "values")


def _records_table(records: Sequence[Mapping[str, Any]], columns: list[str]) -> str:
    rows = ([_cell(r.get(c), c) for c in columns] for r in records)
    return table(columns, rows, len(records))


def _mapping(value: Mapping[str, Any], key: str, depth: int) -> str:
    if all(is_scalar(v) for v in value.values()):
        return key_value_table(value, ("key", "value"))
    columns = _columns(list(value.values()))
    if columns is not None:
        rows = (
            [f"<td>{esc(k)}</td>", *(_cell(v.get(c), c) for c in columns)] for k, v in value.items()
        )
        return table(["key", *columns], rows, len(value))
    series = _series(value)
    if series is not None:
        scalars = {k: v for k, v in value.items() if k not in series}
        head = key_value_table(scalars, ("key", "value")) if scalars else ""
        n = len(value[series[0]])
        rows = ([_cell(value[c][i], c) for c in series] for i in range(n))
        return head + table(series, rows, n)
    if depth >= _MAX_DEPTH:
        return _pre_json(value)
    rows = (
        [f"<td>{esc(k)}</td>", f"<td>{render(v, str(k), depth + 1)}</td>"] for k, v in value.items()
    )
    return table(("key", "value"), rows, len(value))


def render(value: Any, key: str = "", depth: int = 0) -> str:
    """One ``details`` value as HTML by its shape (see the module docstring).

    Args:
        value: a JSON-like value from a result's ``details``.
        key: the key it is stored under; a key ending in ``_s`` gives its numbers a unit.
        depth: how deep in a nested table the value sits.

    Returns:
        An HTML fragment.

    >>> render({"duration_s": 0.0042, "rows": 10})
    ... # doctest: +ELLIPSIS
    '<div class="mlc-scroll"><table>...<td class="mlc-num" title="0.0042">4.2 ms</td>...'
    >>> render([[1, 2], {"a": 1}])
    '<pre>[[1,2],{&quot;a&quot;:1}]</pre>'
    """
    if is_scalar(value):
        return f"<code>{esc(fmt_with_unit(key, value))}</code>"
    if isinstance(value, Mapping):
        return _mapping(value, key, depth)
    if isinstance(value, list):
        columns = _columns(value)
        if columns is not None:
            return _records_table(value, columns)
        if all(is_scalar(v) for v in value):
            return _values(value, key)
    return _pre_json(value)


def size_label(value: Any) -> str:
    """``" (12 rows)"``, ``" (40 values)"``, ``" (3 entries)"``: a details value's size.

    >>> size_label([{"a": 1}]), size_label([0.5, 0.25]), size_label({"a": 1, "b": 2})
    (' (1 row)', ' (2 values)', ' (2 entries)')
    >>> size_label(3)
    ''
    """
    if not isinstance(value, list | Mapping):
        return ""
    n = len(value)
    if isinstance(value, list) and value and all(is_scalar(v) for v in value):
        return f" ({n} {'value' if n == 1 else 'values'})"
    if isinstance(value, list):
        return f" ({n} {'row' if n == 1 else 'rows'})"
    return f" ({n} {'entry' if n == 1 else 'entries'})"
