#!/usr/bin/env python3
"""Plot ipcbench results.

    plot.py RESULTS.csv [MORE.csv ...] [--out DIR] [--size BYTES] [--placement NAME] [--metric NAME]

Reads the results CSV(s) written by `ipcbench run` and the metadata JSON beside each
(`metadata.json` for `results.csv`, `X.metadata.json` for `X.csv`; optional), and writes PNG + SVG
plots and an index.html into DIR (default: beside the first CSV, `plots/` for `results.csv` and
`X.plots/` for `X.csv`, so CSVs sharing a directory get their own plots):

  latency-vs-size     one-way latency p50 with a p50–p99 band vs message size (log–log)
  throughput-vs-size  bytes/s vs message size (log x)
  tail-latency        p50 … max per series at one message size (--size)
  copies              zero-/one-/two-copy series side by side at --size (when several copy classes)
  placement           same-cpu vs cross-cpu vs … at --size (when several placements)
  run-comparison      one metric (--metric) per series, one line per run (when several CSVs)

Only rows with status `ok` are plotted; the others are counted in the figures and index.html.
With several CSVs, plots 1–5 draw on all of them: a cell present in more than one CSV is taken from
the first CSV given that has it (so a second CSV can add, say, the same-cpu placement).

Bad input (missing file, empty or malformed CSV, missing columns, bad option) gives a one-line
error on stderr and exit status 2.

Safe to run as root on a directory others can write to: DIR is created with mkdir and used only when
it is a real directory (not a symlink) owned by the user running this; every file is written to a
new, exclusively created temporary name in DIR (O_CREAT|O_EXCL|O_NOFOLLOW) and renamed into place,
and only over a regular file owned by that user. Anything else refuses the run (exit status 2)
before a plot is drawn; no symlink is ever followed and no file outside DIR is written.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import errno
import html
import json
import math
import os
import re
import secrets
import stat
import sys
from dataclasses import dataclass, field

EXIT_BAD_INPUT = 2
PROG = "plot.py"

STATISTICS = ["min", "p50", "p90", "p99", "p99_9", "p99_99", "max", "mean", "stddev"]
TAIL_POINTS = [("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p99_9", "p99.9"), ("p99_99", "p99.99"), ("max", "max")]
REQUIRED_COLUMNS = ["mechanism", "variant", "copies", "mode", "message_bytes", "placement", "bytes_per_s", "status"]
# Columns parsed as numbers when present (an empty field means "not measured").
NUMERIC_COLUMNS = (
    ["copies", "message_bytes", "messages", "repetitions", "msgs_per_s", "bytes_per_s", "cv", "lost", "reordered", "corrupt",
     "producer_cpu_ns_per_msg", "consumer_cpu_ns_per_msg"]
    + [f"{kind}_{stat}_ns" for kind in ("rtt_half", "one_way") for stat in STATISTICS]
)
PLACEMENT_ORDER = ["same-cpu", "cross-cpu", "cross-numa"]
PLOT_NAMES = ["latency-vs-size", "throughput-vs-size", "tail-latency", "copies", "placement", "wait", "run-comparison"]
WAIT_ORDER = ["block", "poll", "epoll", "sigio", "spin-then-block", "timed"]


class InputError(Exception):
    """Bad input: reported as one line on stderr, exit status 2."""


# ----------------------------------------------------------------------------------------------
# Reading


@dataclass
class Row:
    run: int
    line: int
    mechanism: str
    variant: str
    copies: int | None
    touch: str
    wait: str
    mode: str
    size: int
    placement: str
    status: str
    values: dict[str, float | None]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def get(self, column: str) -> float | None:
        return self.values.get(column)

    def latency(self, stat: str) -> tuple[float | None, bool]:
        """One-way statistic in ns, else the half round trip; the flag says the fallback was used."""
        one_way = self.get(f"one_way_{stat}_ns")
        if one_way is not None:
            return one_way, False
        half = self.get(f"rtt_half_{stat}_ns")
        return half, half is not None

    def cell_key(self) -> tuple:
        return (self.mechanism, self.variant, self.wait, self.copies, self.touch, self.mode, self.size, self.placement)


@dataclass
class Run:
    index: int
    path: str
    metadata: dict | None
    rows: list[Row]
    label: str = ""

    @property
    def host(self) -> dict:
        return (self.metadata or {}).get("host") or {}

    def status_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            kind = row.status.split(":", 1)[0].strip() or "(empty)"
            counts[kind] = counts.get(kind, 0) + 1
        return counts


def metadata_path(csv_path: str) -> str:
    directory, name = os.path.split(csv_path)
    stem = name[:-4] if name.lower().endswith(".csv") else name
    return os.path.join(directory, "metadata.json" if name == "results.csv" else f"{stem}.metadata.json")


def read_metadata(csv_path: str, warnings: list[str]) -> dict | None:
    path = metadata_path(csv_path)
    if not os.path.exists(path):
        warnings.append(f"no metadata beside {csv_path} (looked for {path}); titles lack host and date")
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        warnings.append(f"ignoring unreadable metadata {path}: {error}")
        return None
    if not isinstance(data, dict):
        warnings.append(f"ignoring metadata {path}: not a JSON object")
        return None
    return data


def parse_number(text: str, path: str, line: int, column: str) -> float | None:
    text = text.strip()
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{path}:{line}: column '{column}' is not a number: {text!r}") from None
    if math.isnan(value):
        return None
    return value


def read_csv(path: str, run_index: int) -> list[Row]:
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a results CSV")
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise InputError(f"{path}: empty file (no header, no rows)") from None
            header = [name.strip() for name in header]
            missing = [name for name in REQUIRED_COLUMNS if name not in header]
            if "one_way_p50_ns" not in header and "rtt_half_p50_ns" not in header:
                missing.append("one_way_p50_ns or rtt_half_p50_ns")
            if missing:
                raise InputError(f"{path}: not an ipcbench results CSV: missing column(s) {', '.join(missing)}")
            if len(set(header)) != len(header):
                raise InputError(f"{path}: header repeats a column name")
            rows = []
            for fields in reader:
                line = reader.line_num
                if not fields or all(f.strip() == "" for f in fields):
                    continue
                if len(fields) != len(header):
                    raise InputError(f"{path}:{line}: expected {len(header)} fields as in the header, found {len(fields)}")
                record = dict(zip(header, fields))
                rows.append(make_row(record, path, line, run_index))
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    except csv.Error as error:
        raise InputError(f"{path}: malformed CSV: {error}") from None
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror or error}") from None
    if not rows:
        raise InputError(f"{path}: no result rows (only a header)")
    return rows


def make_row(record: dict[str, str], path: str, line: int, run_index: int) -> Row:
    values = {name: parse_number(record[name], path, line, name) for name in NUMERIC_COLUMNS if name in record}
    size = values.get("message_bytes")
    if size is None or size <= 0 or size != int(size):
        raise InputError(f"{path}:{line}: column 'message_bytes' must be a positive whole number, found {record['message_bytes']!r}")
    copies = values.get("copies")
    mode = record["mode"].strip()
    mechanism = record["mechanism"].strip()
    if not mechanism:
        raise InputError(f"{path}:{line}: empty 'mechanism'")
    return Row(
        run=run_index, line=line, mechanism=mechanism, variant=record["variant"].strip(),
        copies=None if copies is None else int(copies), touch=record.get("touch", "").strip(),
        # CSVs from before the wait axis: every row blocked.
        wait=(record.get("wait") or "block").strip(), mode=mode,
        size=int(size), placement=record["placement"].strip() or "(unspecified)",
        status=record["status"].strip(), values=values,
    )


# ----------------------------------------------------------------------------------------------
# Formatting helpers


def human_size(size: float) -> str:
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    value, unit = float(size), 0
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    text = f"{value:.0f}" if value == int(value) else f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text} {units[unit]}"


def human_time_ns(ns: float) -> str:
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1e3:.3g} µs"
    if ns < 1_000_000_000:
        return f"{ns / 1e6:.3g} ms"
    return f"{ns / 1e9:.3g} s"


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise InputError(f"--size: not a size: {text!r} (use bytes, or a K/M/G suffix: 4096, 4K, 1M)")
    number = float(match.group(1)) * {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[match.group(2).upper()]
    if number <= 0 or number != int(number):
        raise InputError(f"--size: not a whole positive number of bytes: {text!r}")
    return int(number)


def format_date(started_at: str | None) -> str:
    if not started_at:
        return ""
    try:
        when = _dt.datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return started_at
    if when.utcoffset() == _dt.timedelta(0):
        return when.strftime("%Y-%m-%d %H:%M UTC")
    return when.strftime("%Y-%m-%d %H:%M %z")


def cpu_list(values) -> str:
    """[0,1,2,5] -> '0-2,5'."""
    if not isinstance(values, list) or not all(isinstance(v, int) for v in values):
        return "" if values is None else str(values)
    values = sorted(set(values))
    parts, start = [], None
    for i, value in enumerate(values):
        if start is None:
            start = value
        if i + 1 == len(values) or values[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ",".join(parts)


def metric_label(metric: str) -> str:
    if metric.endswith("_ns"):
        kind, stat = ("one-way", metric[len("one_way_"):-3]) if metric.startswith("one_way_") else ("RTT/2", metric[len("rtt_half_"):-3])
        return f"{kind} {stat.replace('_', '.')} latency"
    return {"bytes_per_s": "throughput (bytes/s)", "msgs_per_s": "messages per second"}.get(metric, metric)


def placement_sort_key(name: str) -> tuple:
    return (PLACEMENT_ORDER.index(name) if name in PLACEMENT_ORDER else len(PLACEMENT_ORDER), name)


# ----------------------------------------------------------------------------------------------
# Series: a mechanism plus whatever distinguishes its rows (variant, copies, touch) where it varies.


@dataclass
class Style:
    color: tuple
    linestyle: object
    marker: str


@dataclass
class SeriesNaming:
    labels: dict[tuple, str] = field(default_factory=dict)
    order: dict[str, int] = field(default_factory=dict)
    styles: dict[str, Style] = field(default_factory=dict)

    def label(self, row: Row) -> str:
        return self.labels[self.key(row)]

    def key(self, row: Row) -> tuple:
        return (row.mechanism, row.variant, row.wait, row.copies, row.touch)

    def sorted(self, labels) -> list[str]:
        return sorted(set(labels), key=lambda label: self.order.get(label, 1 << 30))


LINE_STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1)), "v"), ((0, (3, 1, 1, 1, 1, 1)), "P"),
               ((0, (1, 1)), "X"), ((0, (7, 2, 1, 2)), "*")]


def name_series(rows: list[Row]) -> SeriesNaming:
    import matplotlib

    naming = SeriesNaming()
    variants: dict[str, set] = {}
    copies: dict[tuple, set] = {}
    touches = {row.touch for row in rows}
    waits = {row.wait for row in rows}
    mechanisms: list[str] = []
    for row in rows:
        if row.mechanism not in variants:
            mechanisms.append(row.mechanism)
        variants.setdefault(row.mechanism, set()).add(row.variant)
        copies.setdefault((row.mechanism, row.variant), set()).add(row.copies)
    palette = matplotlib.colormaps["tab10" if len(mechanisms) <= 10 else "tab20"].colors
    per_mechanism: dict[str, int] = {}
    for row in rows:
        key = naming.key(row)
        if key in naming.labels:
            continue
        details = []
        if len(variants[row.mechanism]) > 1 and row.variant:
            details.append(row.variant)
        if len(copies[(row.mechanism, row.variant)]) > 1 and row.copies is not None:
            details.append(f"{row.copies}-copy")
        if len(touches) > 1 and row.touch:
            details.append(f"touch={row.touch}")
        if len(waits) > 1:
            details.append(f"wait={row.wait}")
        label = row.mechanism + (f" ({', '.join(details)})" if details else "")
        naming.labels[key] = label
        if label not in naming.order:
            naming.order[label] = len(naming.order)
            index = per_mechanism.get(row.mechanism, 0)
            per_mechanism[row.mechanism] = index + 1
            linestyle, marker = LINE_STYLES[index % len(LINE_STYLES)]
            color = palette[mechanisms.index(row.mechanism) % len(palette)]
            naming.styles[label] = Style(color=color, linestyle=linestyle, marker=marker)
    return naming


# ----------------------------------------------------------------------------------------------
# Output: one directory, opened without following symlinks; every file created exclusively in it


def default_out_dir(csv_path: str) -> str:
    """Where the plots for a CSV go by default: `plots/` beside `results.csv`, `X.plots/` beside `X.csv`
    (the same pairing as the metadata file), so distinct CSVs in one directory never share plots."""
    directory, name = os.path.split(os.path.abspath(csv_path))
    stem = name[:-4] if name.lower().endswith(".csv") else name
    return os.path.join(directory, "plots" if name == "results.csv" else f"{stem}.plots")


class OutputDirectory:
    """The plots directory, held open by a descriptor. It is created with mkdir, or reused only when it
    is a real directory (opened with O_NOFOLLOW) owned by the effective user; every name in it is
    resolved relative to that descriptor and never through a symlink. Files are written to a fresh
    temporary name created with O_CREAT|O_EXCL|O_NOFOLLOW and renamed over the target only when the
    target is absent or a regular file owned by the effective user."""

    def __init__(self, path: str):
        self.path = path
        self.uid = os.geteuid()
        parent, name = os.path.split(os.path.abspath(path))
        if not name or name in (".", ".."):
            raise InputError(f"--out {path}: not a directory name")
        try:
            parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as error:
            raise InputError(f"plots directory {path}: cannot open {parent}: {error.strerror or error}") from None
        try:
            try:
                os.mkdir(name, 0o755, dir_fd=parent_fd)
            except FileExistsError:
                pass  # reused below only if it is a real directory of ours
            except OSError as error:
                raise InputError(f"plots directory {path}: cannot create it: {error.strerror or error}") from None
            try:
                self.fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise InputError(f"refusing to write plots into {path}: it exists and is a symlink or not a "
                                     "directory (remove it, or choose another --out)") from None
                raise InputError(f"plots directory {path}: cannot open it: {error.strerror or error}") from None
        finally:
            os.close(parent_fd)
        owner = os.fstat(self.fd).st_uid
        if owner != self.uid:
            os.close(self.fd)
            raise InputError(f"refusing to write plots into {path}: it exists and belongs to uid {owner}, not to "
                             f"you (uid {self.uid}) (remove it, or choose another --out)")

    def join(self, name: str) -> str:
        return os.path.join(self.path, name)

    def _entry(self, name: str) -> os.stat_result | None:
        try:
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def check_replaceable(self, name: str) -> None:
        """Raises InputError unless `name` is absent or a regular file of ours (so it may be replaced)."""
        entry = self._entry(name)
        if entry is None:
            return
        if stat.S_ISLNK(entry.st_mode):
            what = "a symlink"
        elif not stat.S_ISREG(entry.st_mode):
            what = "not a regular file"
        elif entry.st_uid != self.uid:
            what = f"owned by uid {entry.st_uid}, not by you (uid {self.uid})"
        else:
            return
        raise InputError(f"refusing to replace {self.join(name)}: it is {what} (remove it, or choose another --out)")

    def write(self, name: str, fill) -> None:
        """Creates `name` with the bytes `fill(binary file)` writes, through an exclusive temporary file."""
        self.check_replaceable(name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        for _ in range(100):
            temporary = f".{name}.{secrets.token_hex(8)}.tmp"
            try:
                fd = os.open(temporary, flags, 0o644, dir_fd=self.fd)
                break
            except FileExistsError:
                continue
            except OSError as error:
                raise InputError(f"cannot create a file in {self.path}: {error.strerror or error}") from None
        else:
            raise InputError(f"cannot create a temporary file in {self.path}")
        try:
            with os.fdopen(fd, "wb") as handle:
                fill(handle)
            # Checked again just before the rename: a rename over a symlink swapped in since replaces the
            # link itself (in this directory of ours), never what it points to.
            self.check_replaceable(name)
            os.rename(temporary, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            try:
                os.unlink(temporary, dir_fd=self.fd)
            except OSError:
                pass
            raise

    def remove_stale(self, name: str) -> None:
        """Removes `name` if it is a regular file of ours (a plot an earlier invocation drew)."""
        entry = self._entry(name)
        if entry is not None and stat.S_ISREG(entry.st_mode) and entry.st_uid == self.uid:
            os.unlink(name, dir_fd=self.fd)

    def close(self) -> None:
        os.close(self.fd)


# ----------------------------------------------------------------------------------------------
# Plotting


class Plotter:
    def __init__(self, runs: list[Run], rows: list[Row], args, out_dir: OutputDirectory, notes: list[str]):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker

        self.plt, self.ticker = plt, ticker
        plt.rcParams.update({
            "figure.dpi": 100, "savefig.dpi": 150, "font.size": 10, "axes.titlesize": 11, "axes.grid": True,
            "grid.alpha": 0.3, "legend.fontsize": 9, "svg.fonttype": "none",
        })
        self.runs, self.rows, self.args, self.out_dir, self.notes = runs, rows, args, out_dir, notes
        self.ok = [row for row in rows if row.ok]
        self.naming = name_series([row for run in runs for row in run.rows if row.ok])
        self.placement = self.choose_placement()
        self.size = self.choose_size()
        self.written: list[tuple[str, str, str]] = []  # (name, title, description)

    # -- selection

    def choose_placement(self) -> str:
        counts: dict[str, int] = {}
        for row in self.ok:
            counts[row.placement] = counts.get(row.placement, 0) + 1
        if self.args.placement:
            if self.args.placement not in counts:
                raise InputError(f"--placement {self.args.placement}: no ok rows at that placement "
                                 f"(present: {', '.join(sorted(counts, key=placement_sort_key))})")
            return self.args.placement
        # The placement with most cells; on a tie the cross-CPU one, the usual producer/consumer case.
        return max(counts, key=lambda name: (counts[name], name == "cross-cpu", -placement_sort_key(name)[0]))

    def choose_size(self) -> int:
        sizes = sorted({row.size for row in self.ok})
        if self.args.size is not None:
            if self.args.size not in sizes:
                raise InputError(f"--size {self.args.size}: no ok rows of that size "
                                 f"(present: {', '.join(f'{s} ({human_size(s)})' for s in sizes)})")
            return self.args.size
        # Closest to 4 KiB on a log scale (sizes are swept in powers of two); ties go to the smaller.
        return min(sizes, key=lambda s: (abs(math.log2(s) - 12), s))

    # -- text

    def context(self, runs: list[Run] | None = None) -> str:
        runs = runs or self.runs
        hosts = []
        for run in runs:
            host = run.host
            name = host.get("hostname") or ""
            cpu = host.get("cpu_model") or ""
            text = f"{name} ({cpu})" if name and cpu else (name or cpu)
            if text and text not in hosts:
                hosts.append(text)
        dates = [format_date((run.metadata or {}).get("started_at")) for run in runs]
        dates = [d for d in dates if d]
        parts = []
        if hosts:
            parts.append(hosts[0] if len(hosts) == 1 else f"{len(hosts)} hosts")
        if dates:
            parts.append(dates[0] if len(set(dates)) == 1 else f"{min(dates)} … {max(dates)}")
        if not parts:
            parts.append(", ".join(os.path.basename(run.path) for run in runs))
        return " · ".join(parts)

    def footnote(self, fig, extra: list[str] | None = None, all_runs: bool = False) -> None:
        lines = list(extra or [])
        source = [row for run in self.runs for row in run.rows] if all_runs else self.rows
        counts: dict[str, int] = {}
        for row in source:
            if not row.ok:
                kind = row.status.split(":", 1)[0].strip() or "(empty)"
                counts[kind] = counts.get(kind, 0) + 1
        if counts:
            lines.append("Not plotted: " + ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
                         + " cell(s) (see index.html)")
        if lines:
            # Just below the figure's own box, so it never meets a legend drawn inside it.
            width, height = fig.get_size_inches()
            fig.text(0.1 / width, -0.1 / height, "\n".join(lines), ha="left", va="top", fontsize=8, color="0.35",
                     transform=fig.transFigure)

    # -- axes helpers

    def size_axis(self, ax, sizes) -> None:
        ticker = self.ticker
        sizes = sorted(set(sizes))
        ax.set_xscale("log", base=2)
        ticks = sizes
        if len(ticks) > 9:
            step = math.ceil(len(ticks) / 9)
            ticks = ticks[::step]
        ax.xaxis.set_major_locator(ticker.FixedLocator(ticks))
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: human_size(v)))
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        ax.set_xlim(sizes[0] / 1.6, sizes[-1] * 1.6)
        ax.set_xlabel("message size (bytes; B = 1, KiB = 1024, MiB = 1024²)")
        if len(ticks) > 6:
            self.plt.setp(ax.get_xticklabels(), rotation=30, ha="right")

    def log_axis_readable(self, axis, low: float, high: float, formatter) -> None:
        """Log axis with at least three labelled ticks inside the data range, however narrow it is."""
        ticker = self.ticker
        candidates = [(1.0,), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0), tuple(float(i) for i in range(1, 10))]
        chosen = candidates[-1]
        if low > 0 and high > 0:
            for subs in candidates:
                inside = [m * 10**e for e in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
                          for m in subs if low * 0.999 <= m * 10**e <= high * 1.001]
                if len(inside) >= 3:
                    chosen = subs
                    break
        axis.set_major_locator(ticker.LogLocator(base=10, subs=chosen))
        axis.set_major_formatter(ticker.FuncFormatter(formatter))
        minor = tuple(float(i) for i in range(2, 10)) if chosen == (1.0,) else ()
        axis.set_minor_locator(ticker.LogLocator(base=10, subs=minor) if minor else ticker.NullLocator())
        axis.set_minor_formatter(ticker.NullFormatter())

    def log_y(self, ax, values: list[float], formatter, min_factor: float = 3.0) -> None:
        """Log y axis over the values, widened to at least min_factor (so run-to-run noise of a few
        percent does not fill the panel and look like a large difference), with readable ticks."""
        low, high = min(values), max(values)
        if high / low < min_factor:
            middle = math.sqrt(low * high)
            low, high = middle / math.sqrt(min_factor), middle * math.sqrt(min_factor)
        ax.set_yscale("log")
        ax.set_ylim(low / 1.15, high * 1.15)
        self.log_axis_readable(ax.yaxis, low / 1.15, high * 1.15, formatter)

    @staticmethod
    def micro(v: float, _=None) -> str:
        """Tick label for a value in µs."""
        if v >= 1000:
            return f"{v:,.0f}"
        if v >= 1:
            return f"{v:g}"
        return f"{v:.3g}"

    def legend(self, ax, handles_count: int, title: str | None = None) -> None:
        if handles_count == 0:
            return
        if handles_count > 6:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, title=title,
                      ncol=1 if handles_count <= 22 else 2, frameon=False)
        else:
            ax.legend(loc="best", framealpha=0.9, title=title)

    def figure(self, n_series: int, height: float = 5.4):
        width = 8.5 if n_series <= 6 else 8.5 + (2.4 if n_series <= 22 else 4.8)
        return self.plt.subplots(figsize=(width, height), layout="constrained")

    def save(self, fig, name: str, title: str, description: str) -> None:
        for extension in ("png", "svg"):
            self.out_dir.write(f"{name}.{extension}", lambda handle: fig.savefig(
                handle, format=extension, bbox_inches="tight", pad_inches=0.15))
        self.plt.close(fig)
        self.written.append((name, title, description))

    def skip(self, name: str, reason: str) -> None:
        self.notes.append(f"{name}: skipped — {reason}")

    def series_rows(self, mode: str, placement: str | None = None, size: int | None = None) -> dict[str, list[Row]]:
        grouped: dict[str, list[Row]] = {}
        for row in self.ok:
            if row.mode != mode or (placement and row.placement != placement) or (size and row.size != size):
                continue
            grouped.setdefault(self.naming.label(row), []).append(row)
        return {label: sorted(grouped[label], key=lambda r: r.size) for label in self.naming.sorted(grouped)}

    def placement_text(self) -> str:
        placements = {row.placement for row in self.ok}
        text = f"placement {self.placement}"
        if len(placements) > 1:
            text += " (others in the placement plot)"
        return text

    # -- 1. latency vs size

    def plot_latency(self) -> None:
        name = "latency-vs-size"
        series = self.series_rows("latency", self.placement)
        points = {}
        fallback_any = False
        for label, rows in series.items():
            xs, p50s, p99s, fallback = [], [], [], False
            for row in rows:
                p50, used_half = row.latency("p50")
                if p50 is None:
                    continue
                source = "rtt_half" if used_half else "one_way"
                p99 = row.get(f"{source}_p99_ns")
                xs.append(row.size)
                p50s.append(p50 / 1e3)
                p99s.append(None if p99 is None else p99 / 1e3)
                fallback |= used_half
            if xs:
                points[label] = (xs, p50s, p99s, fallback)
                fallback_any |= fallback
        if not points:
            self.skip(name, "no ok latency-mode rows with a latency figure")
            return
        fig, ax = self.figure(len(points) + 3)
        all_y = []
        for label, (xs, p50s, p99s, fallback) in points.items():
            style = self.naming.styles[label]
            shown = label + (" [RTT/2]" if fallback else "")
            ax.plot(xs, p50s, label=shown, color=style.color, linestyle=style.linestyle, marker=style.marker,
                    markersize=5, linewidth=1.6, zorder=3)
            band = [(x, lo, hi) for x, lo, hi in zip(xs, p50s, p99s) if hi is not None]
            if len(band) >= 2:
                # A faint fill plus a thin p99 edge: overlapping bands of several series stay readable.
                ax.fill_between([b[0] for b in band], [b[1] for b in band], [b[2] for b in band],
                                color=style.color, alpha=0.07, linewidth=0, zorder=1)
                ax.plot([b[0] for b in band], [b[2] for b in band], color=style.color, linestyle=style.linestyle,
                        linewidth=0.8, alpha=0.75, zorder=2)
            elif len(band) == 1:
                x, lo, hi = band[0]
                ax.vlines([x], [lo], [hi], color=style.color, alpha=0.35, linewidth=6, zorder=1)
            all_y += p50s + [v for v in p99s if v is not None]
        self.size_axis(ax, [x for xs, *_ in points.values() for x in xs])
        self.log_y(ax, all_y, self.micro)
        ax.set_ylabel("one-way latency (µs, log scale)")
        ax.set_title(f"One-way latency vs message size: p50 line, p50–p99 band\n{self.context()} · {self.placement_text()}")
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        handles, names = ax.get_legend_handles_labels()
        handles += [Line2D([], [], color="0.3", linewidth=1.6, marker="o", markersize=4),
                    Line2D([], [], color="0.3", linewidth=0.8, alpha=0.75), Patch(color="0.3", alpha=0.15)]
        names += ["p50 (median)", "p99", "p50–p99 band"]
        count = len(handles)
        if count > 6:
            ax.legend(handles, names, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
                      ncol=1 if count <= 22 else 2, frameon=False)
        else:
            ax.legend(handles, names, loc="best", framealpha=0.9)
        notes = []
        if fallback_any:
            notes.append("[RTT/2]: no one-way figure; half the round trip shown instead.")
        self.footnote(fig, notes)
        self.save(fig, name, "One-way latency vs message size",
                  "Median (p50) one-way latency per series, shaded up to p99; log–log. "
                  "Latency-mode (ping-pong) cells at " + self.placement_text() + ".")

    # -- 2. throughput vs size

    def throughput_unit(self, values: list[float]) -> tuple[float, str]:
        if max(values) >= 1e8:
            return 1e9, "GB/s (10⁹ bytes/s)"
        return 1024**2, "MiB/s (2²⁰ bytes/s)"

    def plot_throughput(self) -> None:
        name = "throughput-vs-size"
        series = self.series_rows("throughput", self.placement)
        points = {}
        for label, rows in series.items():
            pairs = [(row.size, row.get("bytes_per_s")) for row in rows if row.get("bytes_per_s")]
            if pairs:
                points[label] = pairs
        if not points:
            self.skip(name, "no ok throughput-mode rows with bytes_per_s")
            return
        values = [v for pairs in points.values() for _, v in pairs]
        scale, unit = self.throughput_unit(values)
        fig, ax = self.figure(len(points))
        for label, pairs in points.items():
            style = self.naming.styles[label]
            ax.plot([p[0] for p in pairs], [p[1] / scale for p in pairs], label=label, color=style.color,
                    linestyle=style.linestyle, marker=style.marker, markersize=5, linewidth=1.6)
        self.size_axis(ax, [p[0] for pairs in points.values() for p in pairs])
        low, high = min(values) / scale, max(values) / scale
        if high / low > 20:
            ax.set_yscale("log")
            self.log_axis_readable(ax.yaxis, low, high, lambda v, _: f"{v:g}")
            ax.set_ylabel(f"throughput, {unit}, log scale")
        else:
            ax.set_ylim(0, high * 1.1)
            ax.set_ylabel(f"throughput, {unit}")
        ax.set_title(f"Throughput (streaming) vs message size\n{self.context()} · {self.placement_text()}")
        self.legend(ax, len(points))
        self.footnote(fig)
        self.save(fig, name, "Throughput vs message size",
                  f"Payload bytes per second in throughput (streaming) mode, in {unit}, per series; log x. "
                  f"Cells at {self.placement_text()}.")

    # -- 3. tail latency at one size

    def plot_tail(self) -> None:
        name = "tail-latency"
        series = self.series_rows("latency", self.placement, self.size)
        points = {}
        for label, rows in series.items():
            row = rows[0]
            ys = []
            fallback = False
            for stat, _ in TAIL_POINTS:
                value, used_half = row.latency(stat)
                ys.append(None if value is None else value / 1e3)
                fallback |= used_half
            if any(y is not None for y in ys):
                messages = row.get("messages")
                points[label] = (ys, fallback, messages)
        if not points:
            self.skip(name, f"no ok latency-mode rows at {human_size(self.size)}")
            return
        fig, ax = self.figure(len(points))
        xs = list(range(len(TAIL_POINTS)))
        all_y = []
        for label, (ys, fallback, messages) in points.items():
            style = self.naming.styles[label]
            shown = label + (" [RTT/2]" if fallback else "")
            if messages:
                shown += f" — {int(messages):,} msgs"
            pairs = [(x, y) for x, y in zip(xs, ys) if y is not None]
            ax.plot([p[0] for p in pairs], [p[1] for p in pairs], label=shown, color=style.color,
                    linestyle=style.linestyle, marker=style.marker, markersize=5, linewidth=1.6)
            all_y += [p[1] for p in pairs]
        ax.set_xticks(xs, [text for _, text in TAIL_POINTS])
        ax.grid(True, axis="x", alpha=0.15)
        ax.set_xlabel("percentile")
        self.log_y(ax, all_y, self.micro)
        ax.set_ylabel("one-way latency (µs, log scale)")
        ax.set_title(f"Tail latency at {human_size(self.size)}\n{self.context()} · {self.placement_text()}")
        self.legend(ax, len(points))
        notes = ["With N messages, percentiles above 1 − 1/N equal the maximum."]
        if any(fallback for _, fallback, _ in points.values()):
            notes.append("[RTT/2]: no one-way figure; half the round trip shown instead.")
        self.footnote(fig, notes)
        self.save(fig, name, f"Tail latency at {human_size(self.size)}",
                  f"Latency percentiles p50 … max per series at {human_size(self.size)} (choose with --size), "
                  f"{self.placement_text()}.")

    # -- bar helpers for plots 4 and 5

    def bar_values(self, rows: list[Row]) -> tuple[float | None, float | None]:
        latency = next((row.latency("p50")[0] for row in rows if row.mode == "latency"), None)
        throughput = next((row.get("bytes_per_s") for row in rows if row.mode == "throughput"), None)
        return (None if latency is None else latency / 1e3), throughput

    def bar_panels(self, n_rows: float):
        height = max(3.2, 0.32 * n_rows + 1.8)
        fig, (left, right) = self.plt.subplots(1, 2, figsize=(12.5, height), layout="constrained", sharey=True)
        return fig, left, right

    def finish_bar_axis(self, ax, values: list[float], label: str, formatter, log_threshold: float = 20) -> None:
        values = [v for v in values if v]
        if not values:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="0.4")
            return
        low, high = min(values), max(values)
        if high / low > log_threshold:
            ax.set_xscale("log")
            self.log_axis_readable(ax.xaxis, low, high, formatter)
            ax.set_xlim(low / 2, high * 2.5)
            label += ", log scale"
        else:
            ax.set_xlim(0, high * 1.22)
            ax.xaxis.set_major_formatter(self.ticker.FuncFormatter(formatter))
        ax.set_xlabel(label)
        ax.grid(True, axis="x", alpha=0.3)
        ax.grid(False, axis="y")

    def annotate_bars(self, ax, bars, values, text) -> None:
        from matplotlib.transforms import blended_transform_factory

        for bar, value in zip(bars, values):
            if not value:
                # Say so rather than leave a blank that reads like "zero".
                ax.text(0.005, bar.get_y() + bar.get_height() / 2, " no cell", va="center", fontsize=7.5,
                        color="0.5", style="italic", transform=blended_transform_factory(ax.transAxes, ax.transData))
            else:
                ax.annotate(text(value), (bar.get_width(), bar.get_y() + bar.get_height() / 2), xytext=(3, 0),
                            textcoords="offset points", va="center", fontsize=7.5, color="0.25")

    # -- 4. copies

    def plot_copies(self) -> None:
        name = "copies"
        rows = [row for row in self.ok if row.size == self.size and row.placement == self.placement]
        classes = sorted({row.copies for row in rows if row.copies is not None})
        if len(classes) < 2:
            present = ", ".join(str(c) for c in classes) or "none"
            self.skip(name, f"only one copy class at {human_size(self.size)}, {self.placement} (copies: {present})")
            return
        grouped: dict[str, list[Row]] = {}
        for row in rows:
            if row.copies is not None:
                grouped.setdefault(self.naming.label(row), []).append(row)
        labels = sorted(grouped, key=lambda label: (grouped[label][0].copies, self.naming.order[label]))
        values = {label: self.bar_values(grouped[label]) for label in labels}
        throughputs = [v[1] for v in values.values() if v[1]]
        scale, unit = self.throughput_unit(throughputs) if throughputs else (1e9, "GB/s (10⁹ bytes/s)")
        colors = self.plt.get_cmap("Set2").colors
        class_color = {c: colors[i % len(colors)] for i, c in enumerate(classes)}
        fig, left, right = self.bar_panels(len(labels))
        ys = list(range(len(labels)))
        bar_colors = [class_color[grouped[label][0].copies] for label in labels]
        lat = [values[label][0] for label in labels]
        thr = [None if values[label][1] is None else values[label][1] / scale for label in labels]
        bars = left.barh(ys, [v or 0 for v in lat], color=bar_colors, edgecolor="0.3", linewidth=0.5)
        self.annotate_bars(left, bars, lat, lambda v: human_time_ns(v * 1e3))
        bars = right.barh(ys, [v or 0 for v in thr], color=bar_colors, edgecolor="0.3", linewidth=0.5)
        self.annotate_bars(right, bars, thr, lambda v: f"{v:.3g}")
        # Separate the copy classes with a thin line so the grouping reads at a glance.
        for i in range(1, len(labels)):
            if grouped[labels[i]][0].copies != grouped[labels[i - 1]][0].copies:
                for ax in (left, right):
                    ax.axhline(i - 0.5, color="0.5", linewidth=0.8)
        left.set_yticks(ys, labels)
        left.invert_yaxis()
        self.finish_bar_axis(left, lat, "one-way latency p50 (µs)", self.micro)
        self.finish_bar_axis(right, thr, f"throughput, {unit}", lambda v, _=None: f"{v:g}")
        left.set_title("latency (ping-pong), p50 — lower is better", fontsize=10)
        right.set_title("throughput (streaming) — higher is better", fontsize=10)
        from matplotlib.patches import Patch

        names = {0: "0 copies (zero-copy)", 1: "1 copy", 2: "2 copies"}
        handles = [Patch(facecolor=class_color[c], edgecolor="0.3", label=names.get(c, f"{c} copies")) for c in classes]
        right.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False,
                     title="copies", title_fontsize=9, alignment="left")
        fig.suptitle(f"Zero-copy vs one-copy vs two-copy at {human_size(self.size)}\n{self.context()} · "
                     f"{self.placement_text()}", fontsize=11)
        self.footnote(fig, ["no cell: that series has no ok cell in that mode at this size."])
        self.save(fig, name, f"Copies at {human_size(self.size)}",
                  f"Each series at {human_size(self.size)}, grouped and coloured by how many times a payload is "
                  "copied between producer and consumer.")

    # -- 5. placement

    def plot_placement(self) -> None:
        name = "placement"
        placements = sorted({row.placement for row in self.ok}, key=placement_sort_key)
        if len(placements) < 2:
            self.skip(name, f"only one placement in the data ({placements[0]})")
            return
        rows = [row for row in self.ok if row.size == self.size]
        grouped: dict[str, dict[str, list[Row]]] = {}
        for row in rows:
            grouped.setdefault(self.naming.label(row), {}).setdefault(row.placement, []).append(row)
        labels = self.naming.sorted(grouped)
        if not labels:
            self.skip(name, f"no ok rows at {human_size(self.size)}")
            return
        present = [p for p in placements if any(p in grouped[label] for label in labels)]
        if len(present) < 2:
            self.skip(name, f"only one placement at {human_size(self.size)} ({present[0]})")
            return
        values = {(label, p): self.bar_values(grouped[label].get(p, [])) for label in labels for p in present}
        throughputs = [v[1] for v in values.values() if v[1]]
        scale, unit = self.throughput_unit(throughputs) if throughputs else (1e9, "GB/s (10⁹ bytes/s)")
        colors = self.plt.get_cmap("Dark2").colors
        fig, left, right = self.bar_panels(len(labels) * len(present) * 0.6)
        height = 0.8 / len(present)
        all_lat, all_thr = [], []
        for j, placement in enumerate(present):
            ys = [i - 0.4 + height * (j + 0.5) for i in range(len(labels))]
            lat = [values[(label, placement)][0] for label in labels]
            thr = [values[(label, placement)][1] for label in labels]
            thr = [None if v is None else v / scale for v in thr]
            bars = left.barh(ys, [v or 0 for v in lat], height=height, color=colors[j % len(colors)], label=placement)
            self.annotate_bars(left, bars, lat, lambda v: human_time_ns(v * 1e3))
            bars = right.barh(ys, [v or 0 for v in thr], height=height, color=colors[j % len(colors)])
            self.annotate_bars(right, bars, thr, lambda v: f"{v:.3g}")
            all_lat += lat
            all_thr += thr
        left.set_yticks(range(len(labels)), labels)
        left.invert_yaxis()
        self.finish_bar_axis(left, all_lat, "one-way latency p50 (µs)", self.micro)
        self.finish_bar_axis(right, all_thr, f"throughput, {unit}", lambda v, _=None: f"{v:g}")
        left.set_title("latency (ping-pong), p50 — lower is better", fontsize=10)
        right.set_title("throughput (streaming) — higher is better", fontsize=10)
        handles, names = left.get_legend_handles_labels()
        right.legend(handles, names, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False,
                     title="placement", title_fontsize=9, alignment="left")
        fig.suptitle(f"Placement comparison at {human_size(self.size)}\n{self.context()}", fontsize=11)
        self.footnote(fig, ["no cell: no ok cell for that series, placement and mode at this size."])
        self.save(fig, name, f"Placement at {human_size(self.size)}",
                  f"Each series at {human_size(self.size)} for every placement present ({', '.join(present)}).")

    # -- 6. wait strategies

    def plot_wait(self) -> None:
        name = "wait"
        rows = [row for row in self.ok if row.mode == "latency"]
        waits = sorted({row.wait for row in rows}, key=lambda w: WAIT_ORDER.index(w) if w in WAIT_ORDER else len(WAIT_ORDER))
        if len(waits) < 2:
            self.skip(name, "one wait strategy in the data" + (f" ({waits[0]})" if waits else ""))
            return
        present = sorted({row.size for row in rows})
        sizes = [s for s in (16, 4096) if s in present] or present[:2]
        grouped: dict[tuple, dict[str, Row]] = {}
        order = {}
        for row in rows:
            if row.size not in sizes:
                continue
            series = row.mechanism + (f" {row.variant}" if row.variant else "")
            order.setdefault(row.mechanism, len(order))
            key = (series, row.size, row.placement)
            grouped.setdefault(key, {})[row.wait] = row
        keys = sorted((k for k, v in grouped.items() if len(v) > 1),
                      key=lambda k: (order[k[0].split(" ")[0]], k[0], k[1], placement_sort_key(k[2])))
        if not keys:
            self.skip(name, "no mechanism with two wait strategies at the same size and placement")
            return
        labels = [f"{series}, {human_size(size)}, {placement}" for series, size, placement in keys]
        colors = self.plt.get_cmap("Set2").colors
        fig, left, right = self.bar_panels(len(keys) * len(waits) * 0.45)
        height = 0.8 / len(waits)
        all_lat, all_cpu = [], []
        for j, wait in enumerate(waits):
            ys = [i - 0.4 + height * (j + 0.5) for i in range(len(keys))]
            picked = [grouped[key].get(wait) for key in keys]
            lat = [None if row is None else row.latency("p50")[0] / 1e3 for row in picked]
            cpu = [None if row is None or row.get("producer_cpu_ns_per_msg") is None
                   else (row.get("producer_cpu_ns_per_msg") + (row.get("consumer_cpu_ns_per_msg") or 0)) / 1e3 for row in picked]
            bars = left.barh(ys, [v or 0 for v in lat], height=height, color=colors[j % len(colors)], label=wait)
            self.annotate_bars(left, bars, lat, lambda v: human_time_ns(v * 1e3))
            bars = right.barh(ys, [v or 0 for v in cpu], height=height, color=colors[j % len(colors)])
            self.annotate_bars(right, bars, cpu, lambda v: human_time_ns(v * 1e3))
            all_lat += lat
            all_cpu += cpu
        left.set_yticks(range(len(keys)), labels)
        left.invert_yaxis()
        self.finish_bar_axis(left, all_lat, "one-way latency p50 (µs)", self.micro)
        self.finish_bar_axis(right, all_cpu, "CPU per round trip, both workers (µs)", self.micro)
        left.set_title("latency (ping-pong), p50 — lower is better", fontsize=10)
        right.set_title("CPU spent per round trip — what the wait costs", fontsize=10)
        handles, names = left.get_legend_handles_labels()
        right.legend(handles, names, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False,
                     title="--wait", title_fontsize=9, alignment="left")
        fig.suptitle(f"How processes wait: latency and CPU per strategy\n{self.context()}", fontsize=11)
        self.footnote(fig, ["no cell: that mechanism has no ok cell with that strategy (unsupported ones are unavailable rows)."])
        self.save(fig, name, "Wait strategies",
                  f"Latency cells at {', '.join(human_size(s) for s in sizes)}: one-way p50 and the CPU both workers spent per "
                  f"round trip, for each --wait strategy ({', '.join(waits)}), every placement present. The gap between block "
                  "and poll across CPUs is the cost of waking a sleeping reader.")

    # -- 7. run comparison

    def plot_runs(self) -> None:
        name = "run-comparison"
        if len(self.runs) < 2:
            return
        metric = self.args.metric
        mode = "throughput" if metric in ("bytes_per_s", "msgs_per_s") else "latency"
        is_latency = metric.endswith("_ns")
        per_series: dict[str, dict[int, list[tuple[int, float]]]] = {}
        run_placement = {}
        for run in self.runs:
            ok = [row for row in run.rows if row.ok and row.mode == mode]
            placements = {row.placement for row in ok}
            if self.placement in placements:
                chosen = self.placement
            elif placements:
                chosen = max(placements, key=lambda p: sum(1 for row in ok if row.placement == p))
            else:
                continue
            run_placement[run.index] = chosen
            for row in ok:
                if row.placement != chosen:
                    continue
                value = self.metric_value(row, metric)
                if value is not None:
                    per_series.setdefault(self.naming.label(row), {}).setdefault(run.index, []).append((row.size, value))
        if not per_series:
            self.skip(name, f"no ok {mode}-mode rows with {metric} in any run")
            return
        labels = self.naming.sorted(per_series)
        placements_differ = len(set(run_placement.values())) > 1
        ncols = min(3, len(labels))
        nrows = math.ceil(len(labels) / ncols)
        fig, axes = self.plt.subplots(nrows, ncols, figsize=(4.2 * ncols + 3.4, 3.1 * nrows + 1.0),
                                      layout="constrained", squeeze=False)
        colors = self.plt.get_cmap("tab10").colors
        scale, unit_label = (1e3, "µs") if is_latency else (1.0, "")
        if metric == "bytes_per_s":
            all_values = [v for runs in per_series.values() for pts in runs.values() for _, v in pts]
            scale, unit_label = self.throughput_unit(all_values)
        elif metric == "msgs_per_s":
            scale, unit_label = 1e3, "thousand msgs/s"
        sizes = sorted({s for runs in per_series.values() for pts in runs.values() for s, _ in pts})
        handles = {}
        for k, label in enumerate(labels):
            ax = axes[k // ncols][k % ncols]
            ys_all = []
            for j, run in enumerate(self.runs):
                pts = sorted(per_series[label].get(run.index, []))
                if not pts:
                    continue
                ys = [v / scale for _, v in pts]
                ys_all += ys
                (line,) = ax.plot([s for s, _ in pts], ys, color=colors[j % len(colors)],
                                  marker=LINE_STYLES[j % len(LINE_STYLES)][1], linewidth=1.5, markersize=4.5)
                text = run.label + (f" [{run_placement[run.index]}]" if placements_differ else "")
                handles[text] = line
            ax.set_title(label, fontsize=10)
            self.size_axis(ax, sizes)
            ax.set_xlabel("message size")
            if is_latency and ys_all:
                self.log_y(ax, ys_all, self.micro)
            elif ys_all:
                ax.set_ylim(0, max(ys_all) * 1.15)
            if k % ncols == 0:
                ax.set_ylabel(f"{metric_label(metric).split(' (')[0]} ({unit_label})" if unit_label else metric_label(metric))
            if len(sizes) > 4:
                self.plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
        for k in range(len(labels), nrows * ncols):
            axes[k // ncols][k % ncols].set_visible(False)
        # An axes legend right of the top-right panel: constrained layout makes room for it reliably.
        axes[0][ncols - 1].legend(list(handles.values()), list(handles.keys()), loc="upper left",
                                  bbox_to_anchor=(1.03, 1.0), borderaxespad=0, frameon=False,
                                  title="run (host, start time)", title_fontsize=9, alignment="left")
        fig.suptitle(f"Run comparison: {metric_label(metric)}" + (" (RTT/2 where no one-way figure)" if metric.startswith("one_way_") else "")
                     + f"\n{len(self.runs)} runs · {self.context()}", fontsize=11)
        self.footnote(fig, all_runs=True)
        self.save(fig, name, f"Run comparison: {metric_label(metric)}",
                  f"{metric_label(metric)} vs message size, one panel per series, one line per run (--metric).")

    @staticmethod
    def metric_value(row: Row, metric: str) -> float | None:
        if metric.startswith("one_way_") and metric.endswith("_ns"):
            return row.latency(metric[len("one_way_"):-3])[0]
        return row.get(metric)

    def plot_all(self) -> None:
        for plot in (self.plot_latency, self.plot_throughput, self.plot_tail, self.plot_copies, self.plot_placement,
                     self.plot_wait, self.plot_runs):
            plot()


# ----------------------------------------------------------------------------------------------
# index.html


def metadata_rows(run: Run) -> list[tuple[str, str]]:
    meta = run.metadata or {}
    host = run.host
    timer = meta.get("timer_overhead") or {}
    cpus = host.get("online_cpus", host.get("online_cp_us"))
    allowed = host.get("allowed_cpus", host.get("allowed_cp_us"))
    cpu_text = ""
    if isinstance(cpus, list):
        cpu_text = f"{len(cpus)} online ({cpu_list(cpus)})"
        if allowed is not None and allowed != cpus:
            cpu_text += f", allowed {cpu_list(allowed)}"
    if host.get("numa_nodes") is not None:
        cpu_text += f"; NUMA nodes {cpu_list(host.get('numa_nodes')) or 'none'}"
    if host.get("smt_active") is not None:
        cpu_text += f"; SMT {'on' if host['smt_active'] else 'off'}"
    if host.get("virtualized"):
        cpu_text += "; virtualized"
    idle = host.get("cpuidle_driver") or ""
    if host.get("cpuidle_governor"):
        idle += f" (governor {host['cpuidle_governor']})"
    if host.get("guest_halt_poll_nanoseconds") is not None:
        idle += f"; guest_halt_poll_ns {host['guest_halt_poll_nanoseconds']}"
    timer_text = ""
    if timer.get("nanoseconds_per_read") is not None:
        timer_text = f"{timer['nanoseconds_per_read']:.1f} ns per clock read"
        if timer.get("typical_step_nanoseconds") is not None:
            timer_text += f", resolution {timer['typical_step_nanoseconds']:.1f} ns"
        elif timer.get("smallest_step_nanoseconds") is not None:
            timer_text += f", smallest step {timer['smallest_step_nanoseconds']} ns"
    command = meta.get("command_line")
    command_text = " ".join(command) if isinstance(command, list) else (command or "")
    state = meta.get("state") or ""
    if meta.get("interrupted_by"):
        state += f" (by {meta['interrupted_by']})"
    if meta.get("wall_seconds") is not None:
        state += f", {meta['wall_seconds']} s"
    counts = run.status_counts()
    cells = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items(), key=lambda kv: (kv[0] != "ok", kv[0])))
    tool = meta.get("tool") or {}
    tool_text = " ".join(str(x) for x in (tool.get("version"), (tool.get("commit") or "")[:12]) if x)
    return [
        ("results", run.path),
        ("host", host.get("hostname", "")),
        ("started", format_date(meta.get("started_at"))),
        ("kernel", host.get("kernel", "")),
        ("CPU", " ".join(x for x in (host.get("cpu_model") or "", host.get("architecture") or "") if x)),
        ("CPUs", cpu_text),
        ("clocksource", host.get("clocksource") or ""),
        ("cpufreq governor", host.get("cpufreq_governor") or ""),
        ("cpuidle driver", idle),
        ("timer overhead", timer_text),
        ("command line", command_text),
        ("state", state),
        ("cells", cells),
        ("ipcbench", tool_text),
    ]


def write_index(plotter: Plotter, out_dir: OutputDirectory, warnings: list[str]) -> str:
    esc = html.escape
    runs = plotter.runs
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>ipcbench results — {esc(plotter.context())}</title>",
             "<style>body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1300px;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.25em .6em;"
             "text-align:left;vertical-align:top;font-size:.92em}th{background:#f3f3f3}"
             "td.cmd{font-family:monospace;word-break:break-all;max-width:40em}img{max-width:100%;height:auto;"
             "border:1px solid #ddd}figure{margin:0 0 2.5em}figcaption{color:#444;margin:.3em 0}"
             ".note{color:#664}</style></head><body>",
             "<h1>ipcbench results</h1>",
             f"<p>{esc(plotter.context())} — plots at message size <b>{esc(human_size(plotter.size))}</b> where a "
             f"single size is used; placement <b>{esc(plotter.placement)}</b> for the size sweeps.</p>",
             ]
    # The answer first: the run's own ranking (metadata "ranking", written by ipcbench run), one per run.
    for run in runs:
        ranking = (run.metadata or {}).get("ranking")
        if isinstance(ranking, list) and all(isinstance(line, str) for line in ranking) and ranking:
            title = "Fastest first" + (f" — {esc(run.label)}" if len(runs) > 1 else "")
            parts.append(f"<h2>{title}</h2><pre>" + esc("\n".join(ranking)) + "</pre>")
    parts.append("<h2>Runs</h2><table>")
    table = [metadata_rows(run) for run in runs]
    if len(runs) > 1:
        parts.append("<tr><th></th>" + "".join(f"<th>{esc(run.label)}</th>" for run in runs) + "</tr>")
    for i, (key, _) in enumerate(table[0]):
        cls = ' class="cmd"' if key in ("command line", "results") else ""
        parts.append(f"<tr><th>{esc(key)}</th>" + "".join(f"<td{cls}>{esc(str(rows[i][1]) or '—')}</td>" for rows in table)
                     + "</tr>")
    parts.append("</table>")
    notes = plotter.notes + warnings
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f'<li class="note">{esc(n)}</li>' for n in notes) + "</ul>")
    parts.append("<h2>Plots</h2>")
    if not plotter.written:
        parts.append("<p>No plots were drawn.</p>")
    for name, title, description in plotter.written:
        parts.append(f'<figure id="{esc(name)}"><h3>{esc(title)}</h3><a href="{esc(name)}.svg">'
                     f'<img src="{esc(name)}.png" alt="{esc(title)}"></a>'
                     f'<figcaption>{esc(description)} <a href="{esc(name)}.svg">SVG</a></figcaption></figure>')
    bad = [row for row in plotter.rows if not row.ok]
    if bad:
        parts.append("<h2>Cells not plotted</h2><table><tr><th>run</th><th>mechanism</th><th>variant</th>"
                     "<th>mode</th><th>size</th><th>placement</th><th>status</th></tr>")
        for row in bad:
            parts.append("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in (
                runs[row.run].label, row.mechanism, row.variant, row.mode, human_size(row.size), row.placement,
                row.status)) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    text = ("\n".join(parts) + "\n").encode("utf-8")
    out_dir.write("index.html", lambda handle: handle.write(text))
    return out_dir.join("index.html")


# ----------------------------------------------------------------------------------------------
# Main


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str):
        raise InputError(message)


def parse_arguments(argv: list[str]):
    parser = ArgumentParser(prog=PROG, description="Plot ipcbench results CSVs (PNG + SVG + index.html).")
    parser.add_argument("csv", nargs="+", help="results CSV(s) written by `ipcbench run`")
    parser.add_argument("--out", help="output directory (default: beside the first CSV, plots/ for results.csv, "
                                      "X.plots/ for X.csv); created if absent, reused only if it is your own "
                                      "real directory")
    parser.add_argument("--size", help="message size for the single-size plots, e.g. 4096 or 4K "
                                       "(default: the size closest to 4 KiB in the data)")
    parser.add_argument("--placement", help="placement for the size sweeps (default: the one with most cells)")
    parser.add_argument("--metric", default="one_way_p50_ns",
                        help="metric for the run comparison: a latency column such as one_way_p99_ns or "
                             "rtt_half_p50_ns (one_way_* falls back to rtt_half_*), bytes_per_s or msgs_per_s "
                             "(default: one_way_p50_ns)")
    args = parser.parse_args(argv)
    args.size = None if args.size is None else parse_size(args.size)
    metric = args.metric.strip()
    aliases = {"latency": "one_way_p50_ns", "throughput": "bytes_per_s"}
    metric = aliases.get(metric, metric)
    if re.fullmatch(r"(one_way|rtt_half)_(min|p50|p90|p99|p99_9|p99_99|max|mean)", metric):
        metric += "_ns"
    valid = [f"{k}_{s}_ns" for k in ("one_way", "rtt_half") for s in STATISTICS if s != "stddev"] + ["bytes_per_s", "msgs_per_s"]
    if metric not in valid:
        raise InputError(f"--metric {args.metric}: unknown; use one of {', '.join(valid)}")
    args.metric = metric
    return args


def run_labels(runs: list[Run]) -> None:
    for run in runs:
        meta = run.metadata or {}
        host = run.host.get("hostname") or ""
        date = format_date(meta.get("started_at"))
        run_id = next((r for r in [meta.get("run_id")] if r), "")
        run.label = " ".join(x for x in (host, date) if x) or run_id or os.path.basename(run.path)
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
    for run in runs:
        if seen[run.label] > 1:
            run.label += f" ({run.path})"


def main(argv: list[str]) -> int:
    args = parse_arguments(argv)
    warnings: list[str] = []
    runs = []
    for index, path in enumerate(args.csv):
        rows = read_csv(path, index)
        runs.append(Run(index=index, path=path, metadata=read_metadata(path, warnings), rows=rows))
    try:  # after the input checks, which need no matplotlib and so stay quick
        import matplotlib  # noqa: F401
    except ImportError:
        raise InputError("matplotlib is not installed: run scripts/setup-plotting, then use .venv/bin/python "
                         "scripts/plot.py") from None
    run_labels(runs)
    # Plots 1–5 use every CSV; a cell found in several is taken from the first CSV that has it.
    merged, seen, duplicates = [], set(), 0
    for run in runs:
        for row in run.rows:
            key = row.cell_key()
            if key in seen:
                duplicates += 1
                continue
            seen.add(key)
            merged.append(row)
    notes: list[str] = []
    if duplicates:
        notes.append(f"{duplicates} cell(s) appear in more than one CSV or twice in one; the size sweeps and "
                     "single-size plots use the first occurrence (the run comparison uses each run's own)")
    ok_count = sum(1 for row in merged if row.ok)
    if ok_count == 0:
        counts = {}
        for run in runs:
            for kind, n in run.status_counts().items():
                counts[kind] = counts.get(kind, 0) + n
        raise InputError("no rows with status ok to plot (" + ", ".join(f"{n} {k}" for k, n in counts.items()) + ")")
    out_dir = OutputDirectory(args.out or default_out_dir(args.csv[0]))
    # Refuse before drawing anything, rather than half-way, when a name we write is taken by something
    # that is not a plain file of ours (a symlink, say).
    for name in ["index.html"] + [f"{plot}.{extension}" for plot in PLOT_NAMES for extension in ("png", "svg")]:
        out_dir.check_replaceable(name)
    plotter = Plotter(runs, merged, args, out_dir, notes)
    plotter.plot_all()
    index = write_index(plotter, out_dir, warnings)
    # Drop plots an earlier invocation left here that this one did not draw, so index and files agree.
    written = {name for name, *_ in plotter.written}
    for name in PLOT_NAMES:
        if name not in written:
            for extension in ("png", "svg"):
                out_dir.remove_stale(f"{name}.{extension}")
    out_dir.close()
    for message in warnings + plotter.notes:
        print(f"{PROG}: note: {message}", file=sys.stderr)
    excluded = [row for row in merged if not row.ok]
    print(f"{ok_count} ok cell(s) plotted" + (f", {len(excluded)} not ok left out" if excluded else "")
          + f"; single-size plots at {human_size(plotter.size)}, sweeps at placement {plotter.placement}")
    for name, *_ in plotter.written:
        for extension in ("png", "svg"):
            print(out_dir.join(f"{name}.{extension}"))
    print(index)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except InputError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as error:  # a bug here: still one line, unless asked for the traceback
        if os.environ.get("PLOT_DEBUG"):
            raise
        print(f"{PROG}: internal error: {type(error).__name__}: {error} (set PLOT_DEBUG=1 for the traceback)",
              file=sys.stderr)
        sys.exit(1)
