"""Markdown tables of result rows (the metrics of an evaluation, an experiment's figures)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["format_table"]


def _cell(value: Any, fmt: str | Callable[[Any], str] | None) -> str:
    if fmt is None:
        return f"{value:.4f}" if isinstance(value, float) else str(value)
    return fmt(value) if callable(fmt) else fmt.format(value)


def format_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    formats: Mapping[str, str | Callable[[Any], str]] | None = None,
    headers: Sequence[str] | None = None,
) -> str:
    """A markdown table of ``rows`` (dicts) with ``columns``.

    Floats are written with 4 decimals unless ``formats`` gives the column a format string (``"{:.2f}"``) or a
    callable ``value -> str``; a missing value is an empty cell.

    Args:
        rows: one mapping per row.
        columns: the keys shown, in order.
        formats: per-column formats (applied to present values only).
        headers: the header cells (default: the column keys).

    Returns:
        The table, lines joined by newlines (no trailing newline).

    Raises:
        ValueError: naming ``headers`` when there is not one per column.

    Example:
        >>> print(format_table([{"method": "fbp", "psnr": 27.123456}], ["method", "psnr"]))
        | method | psnr |
        |---|---|
        | fbp | 27.1235 |
    """
    formats = dict(formats or {})
    headers = list(columns) if headers is None else list(headers)
    if len(headers) != len(columns):
        raise ValueError(f"headers: expected {len(columns)} (one per column), got {len(headers)}.")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = ["" if c not in row else _cell(row[c], formats.get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
