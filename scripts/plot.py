#!/usr/bin/env python3
"""Plot ipcbench results.

    plot.py RESULTS.csv [MORE.csv ...] [--out DIR] [--size BYTES] [--placement NAME] [--wait NAME]
            [--metric NAME] [--alpha P]

Reads the results CSV(s) written by `ipcbench run` and the metadata JSON beside each
(`metadata.json` for `results.csv`, `X.metadata.json` for `X.csv`; optional), and writes PNG + SVG
plots and an index.html into DIR (default: beside the first CSV, `plots/` for `results.csv` and
`X.plots/` for `X.csv`, so CSVs sharing a directory get their own plots):

  latency-vs-size     one-way latency p50 with a p50–p99 band vs message size (log–log)
  throughput-vs-size  bytes/s vs message size (log x)
  tail-latency        p50 … max per series at one message size (--size)
  copies              zero-/one-/two-copy series side by side at --size (when several copy classes), with the
                      produce and touch policies in the title
  placement           same-cpu vs cross-cpu vs … at --size, for each mode measured at two placements or more
  wait                latency and CPU per --wait strategy (when several)
  scaling             aggregate throughput and p99 RTT/2 (p50 dotted) vs how many producer/consumer pairs ran at
                      once (`ipcbench run --pairs`), one line per series at one size, placement and wait (when
                      some series was measured at two pair counts or more)
  scaling-clients     the same vs how many clients (producers) one server (consumer) served at once
                      (`ipcbench run --clients`): the server's throughput summed over the clients, p99 RTT/2 over
                      every client's messages (when some series was measured at two client counts or more)
  scaling-readers     streaming to several readers of one producer (`ipcbench run --readers`): the bytes all
                      readers received together, and the messages published per second (each reaching every
                      reader), vs how many readers (when some series was measured at two reader counts or more)
  run-comparison      one metric (--metric) per series, one line per run (when several CSVs)
  compare-heatmap     each cell's ratio to the first run, per run (when several CSVs; also in compare.html)

The first three are small multiples: one panel per family of mechanisms (byte streams, datagrams and
queues, shared memory, kernel copy paths, other), sharing the y scale; a mechanism has the same colour
in every figure. They, copies and placement show one wait strategy (--wait; block by default).

With two or more CSVs, compare.html compares the runs cell by cell against the first (run A), by the
rule of `ipcbench compare`: the runs' metadata side by side, per cell each run's headline figure, its
ratio to run A with the interval, the two-sided exact Mann–Whitney U p-value and verdict at --alpha
(default 0.01) from `headline_per_repetition`, the heat map, and every cell missing from some run.
Cells match on pairs and clients too (each a column of its own when some cell ran several).

Only rows with status `ok` are plotted; the others are counted in the figures and index.html.

Every plot but the three scaling ones uses only the rows of one pair, one client and one reader
(`pairs`, `clients` and `readers` 1; a CSV without the columns has no others): a row of several pairs
holds their summed throughput and percentiles merged over all of them, a row of several clients the
server's total over them and percentiles merged over them, a row of several readers what they all
received, different figures. Such rows are drawn only in the scaling plots. Scaling has a panel per mode (aggregate throughput; p99 RTT/2 with the p50
dotted), x = pairs with ticks at the counts measured, log y only when the values span more than ×20.
Its size, placement and wait are the other plots' (--size, --placement, --wait) where it has series
there, else chosen by the same rules. A hollow marker is a point whose pairs share CPUs (`pair_sharing`
cpu: more workers than CPUs); a dotted line marks where the workers (2 × pairs) equal the CPUs the
run could use (metadata host.allowed_cpus; none without metadata). Scaling-clients is drawn the same
way with x = clients (rows of one pair; a series' one-client row is its point at 1), the dotted line
where clients + server equal the allowed CPUs (none for same-cpu, where every client shares the
server's CPU). A CSV with pair sweeps and client sweeps gets both figures, with one kind only that one.

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
import base64
import csv
import datetime as _dt
import errno
import functools
import hashlib
import html
import io
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
     "producer_cpu_ns_per_msg", "consumer_cpu_ns_per_msg", "steal_percent", "floor_rtt_before_ns", "pair_spread_percent"]
    + [f"{kind}_{stat}_ns" for kind in ("rtt_half", "one_way") for stat in STATISTICS]
)
PLACEMENT_ORDER = ["same-cpu", "cross-cpu", "cross-numa"]
PLOT_NAMES = ["latency-vs-size", "throughput-vs-size", "tail-latency", "copies", "placement", "wait", "scaling",
              "scaling-clients", "scaling-readers", "run-comparison", "compare-heatmap"]
WAIT_ORDER = ["block", "poll", "epoll", "sigio", "spin-then-block", "timed", "uring", "uring-sqpoll"]


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
    produce: str
    wait: str
    mode: str
    size: int
    placement: str
    status: str
    values: dict[str, float | None]
    paced_rate: str = ""  # text, as `ipcbench compare` matches it
    headline_per_repetition: str | None = None  # None: the CSV predates the column
    # `--pairs`: how many producer/consumer pairs of this cell ran at once (1 in CSVs from before the column).
    # With more than one, bytes_per_s and msgs_per_s are the sum over the pairs and the percentiles are merged.
    pairs: int = 1
    # `--clients`: how many producers (clients) one consumer (the server) served at once (1 in CSVs from before
    # the column). With more than one, pairs is 1, bytes_per_s and msgs_per_s are the server's totals over the
    # clients and the percentiles are merged over them; pair_cpus lists client>server for each client.
    clients: int = 1
    # `--readers`: how many consumers each received every message of one producer (1 in CSVs from before the
    # column). With more than one, bytes_per_s and msgs_per_s are what all readers received together.
    readers: int = 1
    pair_sharing: str = "none"  # none, smt (pairs share physical cores), cpu (more workers than CPUs)
    pair_cpus: str = ""  # producer>consumer CPU of each pair, e.g. "0>1 2>3"; empty when unpinned

    @property
    def single(self) -> bool:
        """One producer and one consumer: the figures every plot but the scaling ones draw."""
        return self.pairs == 1 and self.clients == 1 and self.readers == 1

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
        return (self.mechanism, self.variant, self.wait, self.copies, self.produce, self.touch, self.mode, self.size,
                self.placement, self.paced_rate, self.pairs, self.clients, self.readers)

    def compare_key(self) -> tuple:
        """The columns `ipcbench compare` matches two runs' rows on (RunComparison.matchColumns), with the
        number of pairs and of clients: an aggregate over four pairs, or a server's total over four clients, is
        never compared with one pair's figure."""
        return (self.mechanism, self.variant, self.wait, self.mode, self.size, self.placement, self.touch, self.produce,
                self.paced_rate, self.pairs, self.clients, self.readers)


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
    # CSVs from before `--pairs`: one pair per cell.
    pairs = parse_number(record.get("pairs", ""), path, line, "pairs")
    if pairs is not None and (pairs < 1 or pairs != int(pairs)):
        raise InputError(f"{path}:{line}: column 'pairs' must be a whole number of at least 1, found {record['pairs']!r}")
    # CSVs from before `--clients`: one client (the producer) per consumer.
    clients = parse_number(record.get("clients", ""), path, line, "clients")
    if clients is not None and (clients < 1 or clients != int(clients)):
        raise InputError(f"{path}:{line}: column 'clients' must be a whole number of at least 1, found {record['clients']!r}")
    # CSVs from before `--readers`: one consumer per producer.
    readers = parse_number(record.get("readers", ""), path, line, "readers")
    if readers is not None and (readers < 1 or readers != int(readers)):
        raise InputError(f"{path}:{line}: column 'readers' must be a whole number of at least 1, found {record['readers']!r}")
    return Row(
        run=run_index, line=line, mechanism=mechanism, variant=record["variant"].strip(),
        copies=None if copies is None else int(copies), touch=record.get("touch", "").strip(),
        # CSVs from before the produce and wait axes: every producer wrote its payload, every row blocked
        # (the defaults `ipcbench compare` assumes too).
        produce=(record.get("produce") or "write").strip(), wait=(record.get("wait") or "block").strip(), mode=mode,
        size=int(size), placement=record["placement"].strip() or "(unspecified)",
        status=record["status"].strip(), values=values, paced_rate=record.get("paced_rate_per_s", "").strip(),
        headline_per_repetition=record.get("headline_per_repetition"),
        pairs=1 if pairs is None else int(pairs), clients=1 if clients is None else int(clients),
        readers=1 if readers is None else int(readers), pair_sharing=(record.get("pair_sharing") or "none").strip(),
        pair_cpus=record.get("pair_cpus", "").strip(),
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


def scaled(value: float | None, scale: float) -> float | None:
    """value / scale, or None for a figure that is missing or not positive (nothing to draw on a log axis)."""
    return value / scale if value and value > 0 else None


def placement_sort_key(name: str) -> tuple:
    return (PLACEMENT_ORDER.index(name) if name in PLACEMENT_ORDER else len(PLACEMENT_ORDER), name)


def default_placement(rows: list[Row]) -> str:
    """The placement with most cells; on a tie the cross-CPU one, the usual producer/consumer case."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.placement] = counts.get(row.placement, 0) + 1
    return max(counts, key=lambda name: (counts[name], name == "cross-cpu", -placement_sort_key(name)[0]))


def default_wait(rows: list[Row]) -> str:
    waits = {row.wait for row in rows}
    if "block" in waits:
        return "block"  # the default of `ipcbench run`, and every mechanism supports it
    return max(waits, key=lambda w: (sum(1 for row in rows if row.wait == w), w))


def default_size(sizes) -> int:
    """Closest to 4 KiB on a log scale (sizes are swept in powers of two); ties go to the smaller."""
    return min(sizes, key=lambda s: (abs(math.log2(s) - 12), s))


# What the produce and touch policies do to every message (README: Produce, touch and copies).
PRODUCE_MEANING = {"write": "the producer writes every payload byte", "header": "the producer writes only the header"}
TOUCH_MEANING = {"none": "the consumer reads only the header", "read": "the consumer reads every byte",
                 "verify": "the consumer checks every byte"}


def policy_text(rows: list[Row]) -> str:
    """The produce and touch policies of these rows, e.g. "produce write (the producer writes every
    payload byte), touch read (the consumer reads every byte)": a copies comparison means nothing
    without them."""
    parts = []
    for name, values, meaning in (("produce", {row.produce for row in rows}, PRODUCE_MEANING),
                                  ("touch", {row.touch for row in rows}, TOUCH_MEANING)):
        values = sorted(v for v in values if v)
        if not values:
            parts.append(f"{name} not recorded")
        elif len(values) == 1:
            parts.append(f"{name} {values[0]}" + (f" ({meaning[values[0]]})" if values[0] in meaning else ""))
        else:
            parts.append(f"{name} {' / '.join(values)} (varies: see the series labels)")
    return ", ".join(parts)


def fair_policy(rows: list[Row]) -> bool:
    return all(row.produce == "write" and row.touch == "read" for row in rows)


# ----------------------------------------------------------------------------------------------
# Families and colours: fixed per mechanism id, so a mechanism looks the same in every figure and run


# The figures with one line per series draw one panel per family: some 18 series on one axis cannot
# be told apart. Every id in MechanismRegistry (Sources/IPCBench/Mechanisms/MechanismRegistry.swift) must be
# listed here; scripts/test_plot.py fails when one is not. Unknown ids go to an "other" panel.
MECHANISM_FAMILIES = {
    "byte streams": ["pipe", "fifo", "unix-stream", "tcp", "socketpair"],
    "datagrams and queues": ["unix-dgram", "unix-seqpacket", "udp", "posix-mq", "sysv-msg", "signal"],
    # memfd: the consumer reads the producer's memfd in place (zero copies); the fd is handed over once.
    "shared memory": ["shm-posix", "shm-sysv", "shm-huge", "shm-memfd", "mmap-file", "memfd"],
    # The kernel copies the payload once, from the producer's pages (vmsplice, process_vm_readv).
    "kernel copy paths": ["vmsplice", "cma"],
}
OTHER_FAMILY = "other"
FAMILY_ORDER = list(MECHANISM_FAMILIES) + [OTHER_FAMILY]
FAMILY_OF = {mechanism: family for family, members in MECHANISM_FAMILIES.items() for mechanism in members}

# One colour per mechanism id, whatever else is in the CSV and in whatever order: the same mechanism
# keeps its colour across figures, runs and reports. Hues differ most within a family (same panel).
MECHANISM_COLORS = {
    "pipe": "#1f77b4", "fifo": "#9467bd", "unix-stream": "#ff7f0e", "tcp": "#d62728", "socketpair": "#bcbd22",
    "unix-dgram": "#2ca02c", "unix-seqpacket": "#17becf", "udp": "#e377c2", "posix-mq": "#8c564b",
    "sysv-msg": "#7f7f7f", "signal": "#393b79",
    "shm-posix": "#1b9e77", "shm-sysv": "#d95f02", "mmap-file": "#7570b3", "memfd": "#e7298a", "shm-huge": "#a6761d",
    "shm-memfd": "#e6ab02",
    "vmsplice": "#66a61e", "cma": "#b15928",
}
# For ids not above: picked by a hash of the id (not Python's hash(), which changes per process).
FALLBACK_COLORS = ["#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354",
                   "#756bb1", "#636363", "#6b6ecf", "#b5cf6b", "#e7ba52", "#d6616b", "#ce6dbd"]


def mechanism_family(mechanism: str) -> str:
    return FAMILY_OF.get(mechanism, OTHER_FAMILY)


def mechanism_color(mechanism: str) -> str:
    if mechanism in MECHANISM_COLORS:
        return MECHANISM_COLORS[mechanism]
    digest = hashlib.sha256(mechanism.encode("utf-8")).digest()
    return FALLBACK_COLORS[int.from_bytes(digest[:4], "big") % len(FALLBACK_COLORS)]


def family_sort_key(family: str) -> int:
    return FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)


# ----------------------------------------------------------------------------------------------
# Series: a mechanism plus whatever distinguishes its rows (variant, copies, produce, touch) where it varies.


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
    mechanisms: dict[str, str] = field(default_factory=dict)  # label -> mechanism id

    def label(self, row: Row) -> str:
        return self.labels[self.key(row)]

    def key(self, row: Row) -> tuple:
        return (row.mechanism, row.variant, row.wait, row.copies, row.produce, row.touch, row.paced_rate)

    def family(self, label: str) -> str:
        return mechanism_family(self.mechanisms.get(label, ""))

    def by_family(self, labels) -> dict[str, list[str]]:
        """Labels grouped by family, families in FAMILY_ORDER, labels in series order; no empty family."""
        grouped: dict[str, list[str]] = {}
        for label in self.sorted(labels):
            grouped.setdefault(self.family(label), []).append(label)
        return {family: grouped[family] for family in sorted(grouped, key=family_sort_key)}

    def sorted(self, labels) -> list[str]:
        return sorted(set(labels), key=lambda label: self.order.get(label, 1 << 30))


LINE_STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"), ((0, (5, 1)), "v"), ((0, (3, 1, 1, 1, 1, 1)), "P"),
               ((0, (1, 1)), "X"), ((0, (7, 2, 1, 2)), "*")]


def name_series(rows: list[Row]) -> SeriesNaming:
    naming = SeriesNaming()
    variants: dict[str, set] = {}
    copies: dict[tuple, set] = {}
    produces = {row.produce for row in rows}
    touches = {row.touch for row in rows}
    waits = {row.wait for row in rows}
    paced = {row.paced_rate for row in rows}
    for row in rows:
        variants.setdefault(row.mechanism, set()).add(row.variant)
        copies.setdefault((row.mechanism, row.variant), set()).add(row.copies)
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
        if len(produces) > 1 and row.produce:
            details.append(f"produce={row.produce}")
        if len(touches) > 1 and row.touch:
            details.append(f"touch={row.touch}")
        if len(waits) > 1:
            details.append(f"wait={row.wait}")
        if len(paced) > 1:
            details.append(f"paced {row.paced_rate}/s" if row.paced_rate else "closed loop")
        label = row.mechanism + (f" ({', '.join(details)})" if details else "")
        naming.labels[key] = label
        if label not in naming.order:
            naming.order[label] = len(naming.order)
            index = per_mechanism.get(row.mechanism, 0)
            per_mechanism[row.mechanism] = index + 1
            linestyle, marker = LINE_STYLES[index % len(LINE_STYLES)]
            naming.styles[label] = Style(color=mechanism_color(row.mechanism), linestyle=linestyle, marker=marker)
            naming.mechanisms[label] = row.mechanism
    return naming


# ----------------------------------------------------------------------------------------------
# Comparing runs cell by cell, by the rule of `ipcbench compare`: the same test, the same ratio and the
# same verdicts (Sources/IPCBench/Measurement/RankSumTest.swift, Sources/IPCBench/Report/RunComparison.swift)

DEFAULT_ALPHA = 0.01  # RunComparison.defaultAlpha: some 200 cells are tested at once
VERDICT_FASTER, VERDICT_SLOWER = "faster", "slower"
VERDICT_UNCHANGED, VERDICT_TOO_FEW, VERDICT_NOT_JUDGED = "no significant change", "too few repetitions", "not judged"
VERDICT_ORDER = [VERDICT_SLOWER, VERDICT_FASTER, VERDICT_UNCHANGED, VERDICT_TOO_FEW, VERDICT_NOT_JUDGED]
VERDICT_SUMMARY = {VERDICT_SLOWER: "slower", VERDICT_FASTER: "faster", VERDICT_UNCHANGED: "no significant change",
                   VERDICT_TOO_FEW: "too few repetitions to tell",
                   VERDICT_NOT_JUDGED: "not judged (no per-repetition figures)"}


@functools.lru_cache(maxsize=None)
def orderings_by_u(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m+n, m) orderings of two untied samples of sizes m and n give each U in 0…m·n.
    These are the coefficients of the Gaussian binomial [m+n choose m] in q, built exactly in integers
    as the product over i = 1…m of (1 − q^(n+i)) / (1 − q^i): O(m²n) steps, where the recurrence the
    Swift side uses takes O(m²n²) (the same counts; the tests check both against brute force)."""
    if m <= 0 or n <= 0:
        return (1,)
    size = m * n + 1
    counts = [1] + [0] * (size - 1)
    for i in range(1, m + 1):
        for u in range(size - 1, n + i - 1, -1):  # times (1 − q^(n+i))
            counts[u] -= counts[u - n - i]
        for u in range(i, size):  # divided by (1 − q^i): a power series, so truncating at m·n is exact
            counts[u] += counts[u - i]
    return tuple(counts)


def rank_sum_u(a: list[float], b: list[float]) -> float:
    """U of `a`: the number of pairs (a_i, b_j) with a_i > b_j, ties counting one half."""
    return sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in a for y in b)


def rank_sum_p_value(a: list[float], b: list[float]) -> float:
    """Two-sided exact p-value of the Mann–Whitney U test: twice the smaller tail, at most 1. A U of a
    half (ties) takes each tail from the nearest whole U beyond it (conservative), as RankSumTest does."""
    m, n = len(a), len(b)
    if m == 0 or n == 0:
        return 1.0
    observed = rank_sum_u(a, b)
    counts = orderings_by_u(m, n)
    total = sum(counts)
    low = sum(counts[: math.floor(observed) + 1]) / total
    high = sum(counts[math.ceil(observed):]) / total
    return min(1.0, 2 * min(low, high))


def rank_sum_smallest_p(m: int, n: int) -> float:
    """The smallest two-sided p-value samples of these sizes can give, 2 / C(m+n, m): when it is not below
    alpha no difference can be shown, however large ("too few repetitions")."""
    if m <= 0 or n <= 0:
        return 1.0
    counts = orderings_by_u(m, n)
    return min(1.0, 2 * counts[0] / sum(counts))


def rank_sum_ratio(a: list[float], b: list[float], alpha: float):
    """b over a as the median of all m·n ratios b_j / a_i, with the interval between the k-th smallest and
    k-th largest of them that covers at least 1 − alpha (None when the sizes allow none). Returns
    (estimate, (low, high) or None), or None when a figure is not positive."""
    if not a or not b or any(x <= 0 for x in a):
        return None
    ratios = sorted(y / x for x in a for y in b)
    middle = len(ratios) // 2
    estimate = ratios[middle] if len(ratios) % 2 else math.sqrt(ratios[middle - 1] * ratios[middle])
    counts = orderings_by_u(len(a), len(b))
    total = sum(counts)
    k, tail = 0, 0.0  # k: the largest with P(U <= k − 1) <= alpha / 2
    while k < len(counts) and tail + counts[k] / total <= alpha / 2:
        tail += counts[k] / total
        k += 1
    if k == 0:
        return estimate, None
    return estimate, (ratios[k - 1], ratios[len(ratios) - k])


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


@dataclass
class Figures:
    """A row's headline figure per repetition (p50 RTT/2 in ns for latency, bytes/s for throughput), or
    the row's single figure when the CSV predates `headline_per_repetition` (per_repetition False)."""
    values: list[float]
    per_repetition: bool


def headline_figures(row: Row, path: str) -> Figures | None:
    """None when the row has no headline figure at all; InputError for a malformed one (as compare)."""
    text = row.headline_per_repetition
    if text is not None and text.strip():
        try:
            values = [float(part) for part in text.split()]
        except ValueError:
            values = []
        if not values or not all(math.isfinite(v) and v > 0 for v in values):
            raise InputError(f"{path}:{row.line}: column 'headline_per_repetition' is not a list of positive "
                             f"numbers: {text!r}")
        return Figures(values, True)
    metric = "bytes_per_s" if row.mode == "throughput" else "rtt_half_p50_ns"
    value = row.get(metric)
    if value is None:
        return None
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{path}:{row.line}: column '{metric}' is not a positive number: {value!r}")
    return Figures([value], False)


@dataclass
class CellChange:
    """One cell of a candidate run against the baseline: what `ipcbench compare` prints for it."""
    mode: str
    baseline: float  # median of the baseline's per-repetition figures
    candidate: float
    ratio: float  # candidate ÷ baseline (median of the pairwise ratios when judged)
    ratio_low: float | None
    ratio_high: float | None
    p_value: float | None
    baseline_repetitions: int
    candidate_repetitions: int
    verdict: str
    slowdown_percent: float  # how much longer each message (or byte) takes in the candidate

    @property
    def verdict_text(self) -> str:
        """As the `ipcbench compare` table writes it: `slower +12.7%`, `faster -5.0%`, `~`, …"""
        if self.verdict == VERDICT_UNCHANGED:
            return "~"
        if self.verdict in (VERDICT_FASTER, VERDICT_SLOWER):
            return f"{self.verdict} {self.slowdown_percent:+.1f}%"
        return self.verdict


def judge_cell(mode: str, a: Figures, b: Figures, alpha: float) -> CellChange:
    throughput = mode == "throughput"
    baseline, candidate = median(a.values), median(b.values)
    change = CellChange(mode=mode, baseline=baseline, candidate=candidate, ratio=candidate / baseline, ratio_low=None,
                        ratio_high=None, p_value=None, baseline_repetitions=len(a.values),
                        candidate_repetitions=len(b.values), verdict=VERDICT_NOT_JUDGED, slowdown_percent=0.0)
    if a.per_repetition and b.per_repetition:
        ratio = rank_sum_ratio(a.values, b.values, alpha)
        if ratio is not None:
            change.ratio = ratio[0]
            if ratio[1] is not None:
                change.ratio_low, change.ratio_high = ratio[1]
        if rank_sum_smallest_p(len(a.values), len(b.values)) >= alpha:
            change.verdict = VERDICT_TOO_FEW
        else:
            change.p_value = rank_sum_p_value(a.values, b.values)
            if change.p_value >= alpha:
                change.verdict = VERDICT_UNCHANGED
            else:
                change.verdict = VERDICT_FASTER if (change.ratio > 1) == throughput else VERDICT_SLOWER
    # Latency: time per message is the figure itself; throughput: its inverse.
    change.slowdown_percent = ((1 / change.ratio if throughput else change.ratio) - 1) * 100
    return change


@dataclass
class ComparedCell:
    key: tuple  # Row.compare_key()
    rows: list  # per run: its row for this cell (the first ok one), or None when the run has none
    figures: list  # per run: Figures, or None
    changes: list = field(default_factory=list)  # per run: CellChange against run 0 (None for run 0 itself)

    @property
    def mode(self) -> str:
        return self.key[3]

    @property
    def size(self) -> int:
        return self.key[4]

    def reason_missing(self, run: int) -> str:
        row = self.rows[run]
        if row is None:
            return "not in this run"
        if not row.ok:
            return row.status
        return "ok" if self.figures[run] is not None else "ok, but no headline figure"


@dataclass
class RunsComparison:
    alpha: float
    cells: list[ComparedCell]  # an ok headline figure in every run: judged
    missing: list[ComparedCell]  # without one in at least one run: listed, never dropped silently
    duplicates: int


def compare_runs(runs: list[Run], alpha: float) -> RunsComparison:
    """Every cell of every run, keyed as `ipcbench compare` keys them; each candidate run (1…) judged
    against the first. A key repeated within a run counts once (its first ok row), as the baseline's
    rows do in compare."""
    keys: list[tuple] = []  # in order of first appearance, the baseline's first
    known: set[tuple] = set()
    per_run: list[dict[tuple, Row]] = []
    duplicates = 0
    for run in runs:
        chosen: dict[tuple, Row] = {}
        for row in run.rows:
            key = row.compare_key()
            if key not in known:
                known.add(key)
                keys.append(key)
            if key not in chosen:
                chosen[key] = row
            elif row.ok and not chosen[key].ok:
                chosen[key] = row  # an ok row beats a failed attempt at the same cell
            else:
                duplicates += 1
        per_run.append(chosen)
    cells, missing = [], []
    for key in keys:
        rows = [chosen.get(key) for chosen in per_run]
        figures = [headline_figures(row, run.path) if row is not None and row.ok else None
                   for row, run in zip(rows, runs)]
        cell = ComparedCell(key=key, rows=rows, figures=figures)
        if all(f is not None for f in figures):
            cell.changes = [None] + [judge_cell(key[3], figures[0], f, alpha) for f in figures[1:]]
            cells.append(cell)
        else:
            missing.append(cell)
    return RunsComparison(alpha=alpha, cells=cells, missing=missing, duplicates=duplicates)


def verdict_summary(comparison: RunsComparison, run: int) -> str:
    """The summary line `ipcbench compare` ends with, for candidate `run` against run 0."""
    counts: dict[str, int] = {}
    for cell in comparison.cells:
        verdict = cell.changes[run].verdict
        counts[verdict] = counts.get(verdict, 0) + 1
    text = ", ".join(f"{counts[v]} {VERDICT_SUMMARY[v]}" for v in VERDICT_ORDER if v in counts)
    return (f"{len(comparison.cells)} matching cells: {text} (Mann-Whitney U, two-sided, "
            f"alpha = {comparison.alpha}).")


def run_conditions(run: Run) -> tuple[float | None, float | None]:
    """Median CPU time stolen by the host (%) and median cache-line floor (ns) over the run's ok cells,
    as RunComparison.Conditions computes them."""
    ok = [row for row in run.rows if row.ok]
    steal = [row.get("steal_percent") for row in ok if row.get("steal_percent") is not None]
    floor = [row.get("floor_rtt_before_ns") for row in ok if row.get("floor_rtt_before_ns") is not None]
    return (median(steal) if steal else None), (median(floor) if floor else None)


def conditions_warning(baseline: Run, candidate: Run) -> str | None:
    """As RunComparison.conditionsWarning: 2 points more CPU stolen, or a cache-line floor 15% apart, means
    the runs met different machines, which the test cannot tell from a change of the code."""
    (steal_a, floor_a), (steal_b, floor_b) = run_conditions(baseline), run_conditions(candidate)
    steal_apart = abs((steal_a or 0) - (steal_b or 0))
    floor_apart = abs(floor_b / floor_a - 1) if floor_a and floor_b else 0
    if steal_apart < 2 and floor_apart < 0.15:
        return None
    return (f"the runs met different machines (steal {steal_a or 0:.1f}% against {steal_b or 0:.1f}%, cache-line "
            f"floor {floor_a or 0:.0f} ns against {floor_b or 0:.0f} ns): differences may be the host's, not the code's")


def run_letter(index: int) -> str:
    """Runs are A (the baseline), B, C, … in the comparison page and heat map: short enough for headers."""
    return chr(ord("A") + index) if index < 26 else f"R{index + 1}"


# Row.compare_key() is (mechanism, variant, wait, mode, size, placement, touch, produce, paced rate, pairs, clients,
# readers).
COMPARE_KEY_NAMES = ["mechanism", "variant", "wait", "mode", "size", "placement", "touch", "produce", "paced rate/s",
                     "pairs", "clients", "readers"]
PAIRS_INDEX = COMPARE_KEY_NAMES.index("pairs")
CLIENTS_INDEX = COMPARE_KEY_NAMES.index("clients")
READERS_INDEX = COMPARE_KEY_NAMES.index("readers")
# Shown only when some cell has more than one (CSVs from before `--pairs` / `--clients` have no such column).
COUNT_COLUMNS = ("pairs", "clients", "readers")


@dataclass(frozen=True)
class ScalingPanel:
    """One panel of a scaling plot: a figure of the rows of one mode against the count."""
    mode: str
    title: str
    column: str
    value: object  # Row -> float | None
    kind: str  # "bytes", "messages" or "latency"
    ylabel: str = ""


@dataclass(frozen=True)
class ScalingAxis:
    """What a scaling plot says about its count (`--pairs`, `--clients`, `--readers`)."""
    axis: str
    name: str
    noun: str
    xlabel: str
    panels: tuple
    heading: str
    explanation: str
    sharing: str  # what hollow markers mean
    alt: str
    description: str  # with {size} and {where}
    crowd: str = ""  # the workers that fill the CPUs: "clients + server"


def per_reader(row) -> float | None:
    """Messages the producer published per second: each reached every reader, and msgs_per_s counts them all."""
    value = row.get("msgs_per_s")
    return None if value is None else value / row.readers


SCALING_AXES = {
    "pairs": ScalingAxis(
        "pairs", "scaling", "pair", "pairs running at once",
        (ScalingPanel("throughput", "aggregate throughput vs pairs (sum over the pairs)", "bytes_per_s",
                      lambda row: row.get("bytes_per_s"), "bytes", "aggregate throughput"),
         ScalingPanel("latency", "p99 RTT/2 vs pairs (over every pair's messages)", "rtt_half_p99_ns",
                      lambda row: row.get("rtt_half_p99_ns"), "latency")),
        "Scaling with concurrent producer/consumer pairs",
        "Each pair is a producer and a consumer of the same cell; throughput is the sum over the pairs, the latency "
        "percentiles are over the messages of all pairs together.",
        "pairs share CPUs", "Scaling with pairs",
        "Aggregate payload bytes per second (throughput mode, summed over the pairs) and p99 half round trip (latency "
        "mode, over every pair's messages; p50 dotted) against the number of producer/consumer pairs running at once, "
        "one line per series, at {size} and {where}"),
    "clients": ScalingAxis(
        "clients", "scaling-clients", "client", "clients served by one server",
        (ScalingPanel("throughput", "server throughput vs clients (sum over the clients)", "bytes_per_s",
                      lambda row: row.get("bytes_per_s"), "bytes", "server throughput"),
         ScalingPanel("latency", "p99 RTT/2 vs clients (over every client's messages)", "rtt_half_p99_ns",
                      lambda row: row.get("rtt_half_p99_ns"), "latency")),
        "Fan-in: one server (consumer) serving several clients (producers)",
        "Each client is a producer of the same cell, all served by one consumer; throughput is the server's total "
        "over the clients, the latency percentiles are over the messages of all clients together.",
        "clients and server share CPUs", "Fan-in: clients per server",
        "The server's payload bytes per second (throughput mode, summed over its clients) and p99 half round trip "
        "(latency mode, over every client's messages; p50 dotted) against the number of clients (producers) one "
        "server (consumer) serves at once, one line per series, at {size} and {where}",
        "clients + server"),
    "readers": ScalingAxis(
        "readers", "scaling-readers", "reader", "readers of one producer",
        (ScalingPanel("throughput", "delivered throughput vs readers (all readers together)", "bytes_per_s",
                      lambda row: row.get("bytes_per_s"), "bytes", "delivered throughput"),
         ScalingPanel("throughput", "published messages/s vs readers (each reached every reader)", "msgs_per_s",
                      per_reader, "messages", "published")),
        "Fan-out: one producer whose every message reaches several readers",
        "Each reader is a consumer of the same cell and receives every message; delivered throughput is what all "
        "readers received together, the published rate is that divided by the readers.",
        "readers and producer share CPUs", "Fan-out: readers per producer",
        "Payload bytes per second delivered to all readers together, and messages the producer published per second "
        "(each reaching every reader), streaming, against the number of readers, one line per series, at {size} and "
        "{where}",
        "readers + producer"),
}


def series_key(key: tuple) -> tuple:
    """A compare key without its size: one heat-map row."""
    return key[:4] + key[5:]


def comparison_varying_columns(comparison: RunsComparison) -> set[str]:
    """The key columns that take more than one value in these runs (the others need not be shown), and
    pairs (clients) whenever some cell ran several pairs (served several clients) at once; a CSV from before
    `--pairs` (`--clients`) shows no such column."""
    cells = comparison.cells + comparison.missing
    varying = {name for i, name in enumerate(COMPARE_KEY_NAMES) if len({cell.key[i] for cell in cells}) > 1}
    if any(cell.key[PAIRS_INDEX] > 1 for cell in cells):
        varying.add("pairs")
    if any(cell.key[CLIENTS_INDEX] > 1 for cell in cells):
        varying.add("clients")
    if any(cell.key[READERS_INDEX] > 1 for cell in cells):
        varying.add("readers")
    return varying


def series_label(series: tuple, varying: set[str]) -> str:
    mechanism, variant, wait, mode, placement, touch, produce, paced, pairs, clients, readers = series
    text = f"{mechanism} {variant} · {placement}"
    extras = [f"wait {wait}" if "wait" in varying else "", f"produce {produce}" if "produce" in varying else "",
              f"touch {touch}" if "touch" in varying else "", f"paced {paced}/s" if paced else "",
              (f"{pairs} pair" + ("s" if pairs > 1 else "")) if "pairs" in varying else "",
              (f"{clients} client" + ("s" if clients > 1 else "")) if "clients" in varying else "",
              (f"{readers} reader" + ("s" if readers > 1 else "")) if "readers" in varying else ""]
    return text + "".join(f" · {extra}" for extra in extras if extra)


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
        self.all_ok = [row for row in rows if row.ok]
        # Every plot but the scaling ones shows one pair's figures: rows of several pairs at once, or of one server
        # serving several clients (aggregate throughput, merged percentiles), never mix into them. Their series
        # names come from those rows alone, too.
        self.ok = [row for row in self.all_ok if row.single]
        self.naming = name_series([row for run in runs for row in run.rows if row.ok and row.single])
        several = len(self.all_ok) - len(self.ok)
        if several:
            notes.append(f"{several} ok cell(s) ran several pairs or clients at once (--pairs, --clients) or several "
                         "readers (--readers): they are drawn only in the scaling plots; the other plots show the cells "
                         "of one pair, one client and one reader" + ("" if self.ok else ", and there are none"))
        self.placement = self.choose_placement()
        self.wait = self.choose_wait()
        self.size = self.choose_size()
        self.written: list[tuple[str, str, str]] = []  # (name, title, description)
        self.compare_page = False  # compare.html written (several runs)

    # -- selection

    # The options may name any ok row's value; the defaults come from the rows of one pair (those of
    # several pairs when there are no others, for the scaling plot).

    def choose_placement(self) -> str:
        present = {row.placement for row in self.all_ok}
        if self.args.placement:
            if self.args.placement not in present:
                raise InputError(f"--placement {self.args.placement}: no ok rows at that placement "
                                 f"(present: {', '.join(sorted(present, key=placement_sort_key))})")
            return self.args.placement
        return default_placement(self.ok or self.all_ok)

    def choose_wait(self) -> str:
        """The wait strategy of the size sweeps, copies and placement plots: with `--wait all` every
        mechanism has six, and six lines per mechanism in one panel read as none (the wait plot has them all)."""
        waits = {row.wait for row in self.all_ok}
        if self.args.wait:
            if self.args.wait not in waits:
                raise InputError(f"--wait {self.args.wait}: no ok rows with that wait strategy "
                                 f"(present: {', '.join(sorted(waits))})")
            return self.args.wait
        return default_wait(self.ok or self.all_ok)

    def choose_size(self) -> int:
        sizes = sorted({row.size for row in self.all_ok})
        if self.args.size is not None:
            if self.args.size not in sizes:
                raise InputError(f"--size {self.args.size}: no ok rows of that size "
                                 f"(present: {', '.join(f'{s} ({human_size(s)})' for s in sizes)})")
            return self.args.size
        return default_size({row.size for row in self.ok or self.all_ok})

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

    def size_axis(self, ax, sizes, label: str | None = "message size (bytes; B = 1, KiB = 1024, MiB = 1024²)") -> None:
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
        if label:
            ax.set_xlabel(label)
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

    def save(self, fig, name: str, title: str, description: str) -> bytes:
        """Writes NAME.png and NAME.svg; returns the PNG (compare.html embeds one)."""
        png = io.BytesIO()
        fig.savefig(png, format="png", bbox_inches="tight", pad_inches=0.15)
        self.out_dir.write(f"{name}.png", lambda handle: handle.write(png.getvalue()))
        self.out_dir.write(f"{name}.svg", lambda handle: fig.savefig(handle, format="svg", bbox_inches="tight",
                                                                      pad_inches=0.15))
        self.plt.close(fig)
        self.written.append((name, title, description))
        return png.getvalue()

    def skip(self, name: str, reason: str) -> None:
        self.notes.append(f"{name}: skipped — {reason}")

    def series_rows(self, mode: str, placement: str | None = None, size: int | None = None) -> dict[str, list[Row]]:
        grouped: dict[str, list[Row]] = {}
        for row in self.ok:
            if row.mode != mode or (placement and row.placement != placement) or (size and row.size != size):
                continue
            if row.wait != self.wait:
                continue
            grouped.setdefault(self.naming.label(row), []).append(row)
        return {label: sorted(grouped[label], key=lambda r: r.size) for label in self.naming.sorted(grouped)}

    def placement_text(self) -> str:
        placements = {row.placement for row in self.ok}
        text = f"placement {self.placement}"
        if len(placements) > 1:
            text += " (others in the placement plot)"
        if len({row.wait for row in self.ok}) > 1:
            text += f", wait {self.wait} (others in the wait plot)"
        return text

    # -- small multiples: one panel per family

    def family_panels(self, labels, panel_width: float = 5.6, panel_height: float = 3.5):
        """One panel per family that has series (never an empty panel), two columns, the y axis shared
        so that heights compare across panels. Returns the figure and {family: (axes, labels)}."""
        families = self.naming.by_family(labels)
        count = len(families)
        ncols = 1 if count == 1 else 2
        nrows = math.ceil(count / ncols)
        width = panel_width * ncols + (1.8 if ncols == 1 else 0.9)
        fig, axes = self.plt.subplots(nrows, ncols, figsize=(width, panel_height * nrows + 1.5), layout="constrained",
                                      sharey=True, squeeze=False)
        flat = [ax for row in axes for ax in row]
        for ax in flat[count:]:
            ax.remove()  # the grid's spare slot (an odd number of families): nothing, rather than an empty panel
        panels = {family: (flat[i], members) for i, (family, members) in enumerate(families.items())}
        for family, (ax, members) in panels.items():
            ax.set_title(family, fontsize=10.5, fontweight="bold", loc="left")
        return fig, panels

    @staticmethod
    def panel_legend(ax, handles=None, labels=None) -> None:
        """A legend inside its panel (so it is never clipped), where it covers the fewest points; beside
        the panel when it has too many entries to fit (constrained layout makes room for it)."""
        kwargs = dict(loc="best", fontsize=8, framealpha=0.88, borderpad=0.4, labelspacing=0.3, handlelength=2.6)
        if len(ax.get_legend_handles_labels()[0] if handles is None else handles) > 8:
            kwargs.update(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False)
        if handles is None:
            ax.legend(**kwargs)
        else:
            ax.legend(handles, labels, **kwargs)

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
        fig, panels = self.family_panels(points)
        all_y, all_x = [], [x for xs, *_ in points.values() for x in xs]
        for family, (ax, members) in panels.items():
            for label in members:
                xs, p50s, p99s, fallback = points[label]
                style = self.naming.styles[label]
                ax.plot(xs, p50s, label=label + (" [RTT/2]" if fallback else ""), color=style.color,
                        linestyle=style.linestyle, marker=style.marker, markersize=4.5, linewidth=1.6, zorder=3)
                band = [(x, lo, hi) for x, lo, hi in zip(xs, p50s, p99s) if hi is not None]
                if len(band) >= 2:
                    # A faint fill plus a thin p99 edge: overlapping bands of several series stay readable.
                    ax.fill_between([b[0] for b in band], [b[1] for b in band], [b[2] for b in band],
                                    color=style.color, alpha=0.08, linewidth=0, zorder=1)
                    ax.plot([b[0] for b in band], [b[2] for b in band], color=style.color, linestyle=style.linestyle,
                            linewidth=0.8, alpha=0.75, zorder=2)
                elif len(band) == 1:
                    x, lo, hi = band[0]
                    ax.vlines([x], [lo], [hi], color=style.color, alpha=0.35, linewidth=6, zorder=1)
                all_y += p50s + [v for v in p99s if v is not None]
            self.size_axis(ax, all_x, label=None)
        first = next(iter(panels.values()))[0]
        self.log_y(first, all_y, self.micro)  # shared by every panel
        for ax, _ in panels.values():
            self.panel_legend(ax)
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        key = [Line2D([], [], color="0.3", linewidth=1.6, marker="o", markersize=4),
               Line2D([], [], color="0.3", linewidth=0.8, alpha=0.75), Patch(color="0.3", alpha=0.15)]
        fig.legend(key, ["p50 (median)", "p99", "p50–p99 band"], loc="outside lower center", ncol=3, frameon=False,
                   fontsize=9)
        fig.supxlabel("message size (bytes; B = 1, KiB = 1024, MiB = 1024²)", fontsize=10)
        fig.supylabel("one-way latency (µs, log scale)", fontsize=10)
        fig.suptitle(f"One-way latency vs message size: p50 line, p50–p99 band; panels share the y scale\n{self.context()} · "
                     f"{self.placement_text()}", fontsize=11)
        notes = []
        if fallback_any:
            notes.append("[RTT/2]: no one-way figure; half the round trip shown instead.")
        self.footnote(fig, notes)
        self.save(fig, name, "One-way latency vs message size",
                  "Median (p50) one-way latency per series, shaded up to p99; log–log, one panel per family of "
                  "mechanisms on one shared scale. Latency-mode (ping-pong) cells at " + self.placement_text() + ".")

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
        fig, panels = self.family_panels(points)
        all_x = [p[0] for pairs in points.values() for p in pairs]
        for family, (ax, members) in panels.items():
            for label in members:
                pairs = points[label]
                style = self.naming.styles[label]
                ax.plot([p[0] for p in pairs], [p[1] / scale for p in pairs], label=label, color=style.color,
                        linestyle=style.linestyle, marker=style.marker, markersize=4.5, linewidth=1.6)
            self.size_axis(ax, all_x, label=None)
        first = next(iter(panels.values()))[0]
        low, high = min(values) / scale, max(values) / scale
        if high / low > 20:
            first.set_yscale("log")
            first.set_ylim(low / 1.4, high * 1.4)
            self.log_axis_readable(first.yaxis, low, high, lambda v, _: f"{v:g}")
            ylabel = f"throughput, {unit}, log scale"
        else:
            first.set_ylim(0, high * 1.1)
            ylabel = f"throughput, {unit}"
        for ax, _ in panels.values():
            self.panel_legend(ax)
        fig.supxlabel("message size (bytes; B = 1, KiB = 1024, MiB = 1024²)", fontsize=10)
        fig.supylabel(ylabel, fontsize=10)
        fig.suptitle(f"Throughput (streaming) vs message size; panels share the y scale\n{self.context()} · "
                     f"{self.placement_text()}", fontsize=11)
        self.footnote(fig)
        self.save(fig, name, "Throughput vs message size",
                  f"Payload bytes per second in throughput (streaming) mode, in {unit}, per series; log x, one panel "
                  f"per family of mechanisms on one shared scale. Cells at {self.placement_text()}.")

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
        fig, panels = self.family_panels(points)
        xs = list(range(len(TAIL_POINTS)))
        all_y = []
        for family, (ax, members) in panels.items():
            for label in members:
                ys, fallback, messages = points[label]
                style = self.naming.styles[label]
                shown = label + (" [RTT/2]" if fallback else "")
                if messages:
                    shown += f" — {int(messages):,} msgs"
                pairs = [(x, y) for x, y in zip(xs, ys) if y is not None]
                ax.plot([p[0] for p in pairs], [p[1] for p in pairs], label=shown, color=style.color,
                        linestyle=style.linestyle, marker=style.marker, markersize=4.5, linewidth=1.6)
                all_y += [p[1] for p in pairs]
            ax.set_xticks(xs, [text for _, text in TAIL_POINTS])
            ax.set_xlim(-0.3, len(xs) - 0.7)
            ax.grid(True, axis="x", alpha=0.15)
        first = next(iter(panels.values()))[0]
        self.log_y(first, all_y, self.micro)
        for ax, _ in panels.values():
            self.panel_legend(ax)
        fig.supxlabel("percentile", fontsize=10)
        fig.supylabel("one-way latency (µs, log scale)", fontsize=10)
        fig.suptitle(f"Tail latency at {human_size(self.size)}; panels share the y scale\n{self.context()} · "
                     f"{self.placement_text()}", fontsize=11)
        notes = ["With N messages, percentiles above 1 − 1/N equal the maximum."]
        if any(fallback for _, fallback, _ in points.values()):
            notes.append("[RTT/2]: no one-way figure; half the round trip shown instead.")
        self.footnote(fig, notes)
        self.save(fig, name, f"Tail latency at {human_size(self.size)}",
                  f"Latency percentiles p50 … max per series at {human_size(self.size)} (choose with --size), "
                  f"{self.placement_text()}; one panel per family of mechanisms on one shared scale.")

    # -- bar helpers for plots 4 and 5

    def bar_values(self, rows: list[Row]) -> tuple[float | None, float | None]:
        latency = next((row.latency("p50")[0] for row in rows if row.mode == "latency"), None)
        throughput = next((row.get("bytes_per_s") for row in rows if row.mode == "throughput"), None)
        return (None if latency is None else latency / 1e3), throughput

    def bar_panels(self, n_rows: float, count: int = 2):
        """`count` side-by-side panels of horizontal bars sharing their rows (labels on the left one)."""
        height = max(3.2, 0.32 * n_rows + 1.8)
        fig, axes = self.plt.subplots(1, count, figsize=(12.5 if count > 1 else 8.6, height), layout="constrained",
                                      sharey=True, squeeze=False)
        return fig, list(axes[0])

    def bar_panel(self, ax, labels: list[str], groups: list, value, color, text, edge: bool = False) -> list:
        """One bar per label and group (groups side by side within a label's row); value(label, group) is
        the bar's length or None (drawn as "no cell"), color(label, group_index) its colour. Returns
        every value, for the axis limits."""
        height = 0.8 / len(groups)
        drawn = []
        for j, group in enumerate(groups):
            ys = [i - 0.4 + height * (j + 0.5) for i in range(len(labels))]
            values = [value(label, group) for label in labels]
            bars = ax.barh(ys, [v or 0 for v in values], height=height, color=[color(label, j) for label in labels],
                           edgecolor="0.3" if edge else "none", linewidth=0.5 if edge else 0)
            self.annotate_bars(ax, bars, values, text)
            drawn += values
        return drawn

    @staticmethod
    def bar_rows(ax, labels: list[str]) -> None:
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()  # the first label on top (the axis is shared: once is enough)

    def finish_bar_axis(self, ax, values: list[float], label: str, formatter, log_threshold: float = 20) -> None:
        values = [v for v in values if v]
        if not values:
            # Callers leave out a panel without data; this is a last resort, never a blank panel.
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

    # The two bar-chart panels: latency (one-way p50, µs) and throughput (bytes/s).
    BAR_MODES = {
        "latency": ("latency (ping-pong), p50 — lower is better", "one-way latency p50 (µs)"),
        "throughput": ("throughput (streaming) — higher is better", "throughput, {unit}"),
    }

    def bar_mode_value(self, rows: list[Row], mode: str) -> float | None:
        latency, throughput = self.bar_values(rows)
        return latency if mode == "latency" else throughput

    # -- 4. copies

    def plot_copies(self) -> None:
        name = "copies"
        rows = [row for row in self.ok if row.size == self.size and row.placement == self.placement and row.wait == self.wait]
        classes = sorted({row.copies for row in rows if row.copies is not None})
        if len(classes) < 2:
            present = ", ".join(str(c) for c in classes) or "none"
            self.skip(name, f"only one copy class at {human_size(self.size)}, {self.placement} (copies: {present})")
            return
        grouped: dict[str, list[Row]] = {}
        for row in rows:
            if row.copies is not None:
                grouped.setdefault(self.naming.label(row), []).append(row)
        values = {(label, mode): self.bar_mode_value(grouped[label], mode) for label in grouped for mode in self.BAR_MODES}
        # A mode without a single cell here gets no panel (rather than an empty one).
        modes = [mode for mode in self.BAR_MODES if any(values[(label, mode)] for label in grouped)]
        labels = sorted((label for label in grouped if any(values[(label, mode)] for mode in modes)),
                        key=lambda label: (grouped[label][0].copies, self.naming.order[label]))
        classes = sorted({grouped[label][0].copies for label in labels})
        throughputs = [values[(label, "throughput")] for label in labels if values[(label, "throughput")]]
        scale, unit = self.throughput_unit(throughputs) if throughputs else (1e9, "GB/s (10⁹ bytes/s)")
        colors = self.plt.get_cmap("Set2").colors
        class_color = {c: colors[i % len(colors)] for i, c in enumerate(classes)}
        fig, axes = self.bar_panels(len(labels), len(modes))
        gaps = False
        for ax, mode in zip(axes, modes):
            title, xlabel = self.BAR_MODES[mode]
            if mode == "latency":
                drawn = self.bar_panel(ax, labels, [mode], lambda label, m: values[(label, m)],
                                       lambda label, _: class_color[grouped[label][0].copies],
                                       lambda v: human_time_ns(v * 1e3), edge=True)
                self.finish_bar_axis(ax, drawn, xlabel, self.micro)
            else:
                drawn = self.bar_panel(ax, labels, [mode], lambda label, m: values[(label, m)] and values[(label, m)] / scale,
                                       lambda label, _: class_color[grouped[label][0].copies],
                                       lambda v: f"{v:.3g}", edge=True)
                self.finish_bar_axis(ax, drawn, xlabel.format(unit=unit), lambda v, _=None: f"{v:g}")
            gaps |= any(not v for v in drawn)
            ax.set_title(title, fontsize=10)
            # Separate the copy classes with a thin line so the grouping reads at a glance.
            for i in range(1, len(labels)):
                if grouped[labels[i]][0].copies != grouped[labels[i - 1]][0].copies:
                    ax.axhline(i - 0.5, color="0.5", linewidth=0.8)
        self.bar_rows(axes[0], labels)
        from matplotlib.patches import Patch

        names = {0: "0 copies (zero-copy)", 1: "1 copy", 2: "2 copies"}
        handles = [Patch(facecolor=class_color[c], edgecolor="0.3", label=names.get(c, f"{c} copies")) for c in classes]
        axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False,
                        title="copies", title_fontsize=9, alignment="left")
        policy = policy_text([row for label in labels for row in grouped[label]])
        fig.suptitle(f"Zero-copy vs one-copy vs two-copy at {human_size(self.size)}\n{self.context()} · "
                     f"{self.placement_text()}\n{policy}", fontsize=11)
        notes = ["no cell: that series has no ok cell in that mode at this size."] if gaps else []
        missing = [mode for mode in self.BAR_MODES if mode not in modes]
        if missing:
            notes.append(f"No {' or '.join(missing)} panel: no such cells at this size and placement.")
        if not fair_policy([row for label in labels for row in grouped[label]]):
            notes.append("Zero-copy and copying rows compare fairly only at produce write, touch read (README: "
                         "Produce, touch and copies).")
        self.footnote(fig, notes)
        self.save(fig, name, f"Copies at {human_size(self.size)}",
                  f"Each series at {human_size(self.size)}, grouped and coloured by how many times a payload is "
                  f"copied between producer and consumer. Policies: {policy}.")

    # -- 5. placement

    def plot_placement(self) -> None:
        name = "placement"
        placements = sorted({row.placement for row in self.ok}, key=placement_sort_key)
        if len(placements) < 2:
            self.skip(name, "only one placement in the data" + (f" ({placements[0]})" if placements else ""))
            return
        rows = [row for row in self.ok if row.size == self.size and row.wait == self.wait]
        grouped: dict[str, dict[str, list[Row]]] = {}
        for row in rows:
            grouped.setdefault(self.naming.label(row), {}).setdefault(row.placement, []).append(row)
        values = {(label, p, mode): self.bar_mode_value(by_placement.get(p, []), mode)
                  for label, by_placement in grouped.items() for p in placements for mode in self.BAR_MODES}
        # A panel per mode measured at two placements or more at this size: a mode measured at one placement
        # (the default suite streams only across CPUs) has nothing to compare here, and an empty panel misleads.
        modes, left_out = [], []
        for mode in self.BAR_MODES:
            present = [p for p in placements if any(values[(label, p, mode)] for label in grouped)]
            if len(present) >= 2:
                modes.append(mode)
            else:
                left_out.append(f"{mode} (" + (f"measured at {present[0]} only" if present else "no cells") + ")")
        if not modes:
            self.skip(name, f"no mode has two placements at {human_size(self.size)} ({'; '.join(left_out)})")
            return
        present = [p for p in placements if any(values[(label, p, mode)] for label in grouped for mode in modes)]
        labels = self.naming.sorted(label for label in grouped
                                    if any(values[(label, p, mode)] for p in present for mode in modes))
        throughputs = [values[(label, p, "throughput")] for label in labels for p in present
                       if values[(label, p, "throughput")]]
        scale, unit = self.throughput_unit(throughputs) if throughputs else (1e9, "GB/s (10⁹ bytes/s)")
        colors = self.plt.get_cmap("Dark2").colors
        fig, axes = self.bar_panels(len(labels) * len(present) * 0.6, len(modes))
        gaps = False
        for ax, mode in zip(axes, modes):
            title, xlabel = self.BAR_MODES[mode]
            color = lambda label, j: colors[j % len(colors)]  # noqa: E731
            if mode == "latency":
                drawn = self.bar_panel(ax, labels, present, lambda label, p: values[(label, p, "latency")], color,
                                       lambda v: human_time_ns(v * 1e3))
                self.finish_bar_axis(ax, drawn, xlabel, self.micro)
            else:
                drawn = self.bar_panel(ax, labels, present,
                                       lambda label, p: values[(label, p, mode)] and values[(label, p, mode)] / scale,
                                       color, lambda v: f"{v:.3g}")
                self.finish_bar_axis(ax, drawn, xlabel.format(unit=unit), lambda v, _=None: f"{v:g}")
            gaps |= any(not v for v in drawn)
            ax.set_title(title, fontsize=10)
        self.bar_rows(axes[0], labels)
        from matplotlib.patches import Patch

        handles = [Patch(facecolor=colors[j % len(colors)], label=p) for j, p in enumerate(present)]
        axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False,
                        title="placement", title_fontsize=9, alignment="left")
        waits = "" if len({row.wait for row in self.ok}) < 2 else f" · wait {self.wait} (others in the wait plot)"
        fig.suptitle(f"Placement comparison at {human_size(self.size)}\n{self.context()}{waits}", fontsize=11)
        notes = ["no cell: no ok cell for that series, placement and mode at this size."] if gaps else []
        if left_out:
            notes.append("No panel for " + " or ".join(left_out) + ": nothing to compare across placements.")
        self.footnote(fig, notes)
        self.save(fig, name, f"Placement at {human_size(self.size)}",
                  f"Each series at {human_size(self.size)} for every placement present ({', '.join(present)}), "
                  f"{' and '.join(modes)} mode" + (f"; no panel for {' or '.join(left_out)}." if left_out else "."))

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

        def cpu_per_round_trip(row: Row | None) -> float | None:
            if row is None or row.get("producer_cpu_ns_per_msg") is None:
                return None
            return (row.get("producer_cpu_ns_per_msg") + (row.get("consumer_cpu_ns_per_msg") or 0)) / 1e3

        def latency(row: Row | None) -> float | None:
            return None if row is None or row.latency("p50")[0] is None else row.latency("p50")[0] / 1e3

        # No CPU panel for a CSV from before the CPU columns: an empty panel says nothing.
        with_cpu = any(cpu_per_round_trip(row) for key in keys for row in grouped[key].values())
        fig, axes = self.bar_panels(len(keys) * len(waits) * 0.45, 2 if with_cpu else 1)
        index = {label: key for label, key in zip(labels, keys)}
        color = lambda label, j: colors[j % len(colors)]  # noqa: E731
        panels = [("latency (ping-pong), p50 — lower is better", "one-way latency p50 (µs)", latency)]
        if with_cpu:
            panels.append(("CPU spent per round trip — what the wait costs", "CPU per round trip, both workers (µs)",
                           cpu_per_round_trip))
        for ax, (title, xlabel, figure) in zip(axes, panels):
            drawn = self.bar_panel(ax, labels, waits, lambda label, wait, f=figure: f(grouped[index[label]].get(wait)),
                                   color, lambda v: human_time_ns(v * 1e3))
            self.finish_bar_axis(ax, drawn, xlabel, self.micro)
            ax.set_title(title, fontsize=10)
        self.bar_rows(axes[0], labels)
        from matplotlib.patches import Patch

        handles = [Patch(facecolor=colors[j % len(colors)], label=wait) for j, wait in enumerate(waits)]
        axes[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0, frameon=False,
                        title="--wait", title_fontsize=9, alignment="left")
        fig.suptitle(f"How processes wait: latency and CPU per strategy\n{self.context()}", fontsize=11)
        self.footnote(fig, ["no cell: that mechanism has no ok cell with that strategy (unsupported ones are unavailable rows)."])
        self.save(fig, name, "Wait strategies",
                  f"Latency cells at {', '.join(human_size(s) for s in sizes)}: one-way p50 and the CPU both workers spent per "
                  f"round trip, for each --wait strategy ({', '.join(waits)}), every placement present. The gap between block "
                  "and poll across CPUs is the cost of waking a sleeping reader.")

    # -- 7. scaling: several pairs at once (ipcbench run --pairs), one server and several clients (--clients)

    def scaling_series(self, axis: str = "pairs") -> dict[tuple, list[Row]]:
        """Ok rows by series (mechanism, variant, copies, wait, produce, touch, paced rate), mode, size and
        placement, each list ordered by `axis` ("pairs", "clients" or "readers"): the series measured at two
        counts or more. Every row of a series has 1 in the other two counts; its row with 1 in `axis` too is
        the point at 1."""
        others = [count for count in COUNT_COLUMNS if count != axis]
        grouped: dict[tuple, dict[int, Row]] = {}
        for row in self.all_ok:
            if any(getattr(row, other) != 1 for other in others):
                continue
            key = (row.mechanism, row.variant, row.copies, row.wait, row.produce, row.touch, row.paced_rate, row.mode,
                   row.size, row.placement)
            grouped.setdefault(key, {}).setdefault(getattr(row, axis), row)
        return {key: [by_count[n] for n in sorted(by_count)] for key, by_count in grouped.items() if len(by_count) > 1}

    def allowed_cpu_counts(self, rows: list[Row]) -> list[int]:
        """How many CPUs the runs these rows come from could use (metadata host.allowed_cpus)."""
        counts = set()
        for run in self.runs:
            allowed = run.host.get("allowed_cpus", run.host.get("allowed_cp_us"))
            if isinstance(allowed, list) and allowed and any(row.run == run.index for row in rows):
                counts.add(len(allowed))
        return sorted(counts)

    @staticmethod
    def scaling_line(ax, rows: list[Row], value, style: Style, axis: str = "pairs", **line) -> list[float]:
        """One line over pairs (or clients, or readers); a point whose workers share CPUs gets a hollow marker.
        Returns the values drawn."""
        points = [(getattr(row, axis), value(row), row.pair_sharing == "cpu") for row in rows if value(row) is not None]
        filled = [i for i, (_, _, shared) in enumerate(points) if not shared]
        ax.plot([p[0] for p in points], [p[1] for p in points], color=style.color, markevery=filled, **line)
        hollow = [p for p in points if p[2]]
        if hollow and line.get("marker"):
            ax.plot([p[0] for p in hollow], [p[1] for p in hollow], linestyle="none", marker=line["marker"],
                    markersize=line.get("markersize"), color=style.color, fillstyle="none", markeredgewidth=1.3)
        return [p[1] for p in points]

    def plot_scaling(self) -> None:
        """scaling: pairs on x (ipcbench run --pairs)."""
        self.plot_scaling_over(SCALING_AXES["pairs"])

    def plot_scaling_clients(self) -> None:
        """scaling-clients: clients of one server on x (ipcbench run --clients)."""
        self.plot_scaling_over(SCALING_AXES["clients"])

    def plot_scaling_readers(self) -> None:
        """scaling-readers: readers of one producer on x (ipcbench run --readers)."""
        self.plot_scaling_over(SCALING_AXES["readers"])

    def plot_scaling_over(self, spec: ScalingAxis) -> None:
        axis, name = spec.axis, spec.name
        if all(getattr(row, axis) == 1 for row in self.all_ok):
            return  # a run without this option (or from before it): nothing to say
        series = self.scaling_series(axis)
        if not series:
            self.skip(name, f"no series measured at two {spec.noun} counts or more (ipcbench run --{axis} 1,2,4)")
            return
        # One placement, wait strategy and size, as the other plots choose them where these have such series.
        chosen = {}
        for attribute, preferred, default in (("placement", self.placement, default_placement),
                                              ("wait", self.wait, default_wait),
                                              ("size", self.size, lambda rows: default_size({r.size for r in rows}))):
            rows = [row for members in series.values() for row in members]
            value = preferred if any(getattr(row, attribute) == preferred for row in rows) else default(rows)
            series = {key: members for key, members in series.items() if getattr(members[0], attribute) == value}
            chosen[attribute] = value
        size = chosen["size"]
        rows = [row for members in series.values() for row in members]
        naming = name_series(rows)
        panels = [panel for panel in spec.panels if any(members[0].mode == panel.mode and any(panel.value(r) for r in members)
                                                        for members in series.values())]
        if not panels:
            self.skip(name, f"no {' or '.join(sorted({p.column for p in spec.panels}))} in the series measured at "
                            f"several {spec.noun} counts")
            return
        counts = sorted({getattr(row, axis) for row in rows})
        # The dotted line where the workers fill the CPUs the run could use, at `position(n)` on x.
        same_cpu = chosen["placement"] == "same-cpu"
        if axis == "pairs":
            # Two workers per pair, one CPU per pair when both share it (same-cpu).
            workers = 1 if same_cpu else 2
            position = lambda n: n / workers  # noqa: E731
            marker_label = lambda n: f"{'2 × ' if workers == 2 else ''}pairs = {n} CPUs"  # noqa: E731
            allowed = self.allowed_cpu_counts(rows)
        else:
            # The many and their one peer, one CPU each; same-cpu puts them all on one CPU, so they never fill
            # more than one and there is no such line.
            position = lambda n: n - 1  # noqa: E731
            marker_label = lambda n: f"{spec.crowd} = {n} CPUs"  # noqa: E731
            allowed = [] if same_cpu else self.allowed_cpu_counts(rows)
        cpus = [n for n in allowed if counts[0] / 2 <= position(n) <= counts[-1] * 2]
        beyond = [n for n in allowed if n not in cpus]
        fig, axes = self.plt.subplots(1, len(panels), figsize=(6.4 * len(panels) + 1.0, 4.8), layout="constrained",
                                      squeeze=False)
        from matplotlib.lines import Line2D

        for ax, panel in zip(axes[0], panels):
            members = {naming.label(m[0]): m for m in series.values() if m[0].mode == panel.mode}
            values = [panel.value(r) for m in members.values() for r in m if panel.value(r)]
            if panel.kind == "bytes":
                scale, unit = self.throughput_unit(values)
                ylabel = f"{panel.ylabel}, {unit}"
                formatter = lambda v, _=None: f"{v:g}"  # noqa: E731
            elif panel.kind == "messages":
                scale, unit = (1e6, "million messages/s") if max(values) >= 1e6 else (1e3, "thousand messages/s")
                ylabel = f"{panel.ylabel}, {unit}"
                formatter = lambda v, _=None: f"{v:g}"  # noqa: E731
            else:
                scale, ylabel, formatter = 1e3, "RTT/2 (µs)", self.micro
            drawn, shared = [], False
            for label in naming.sorted(members):
                style = naming.styles[label]
                drawn += self.scaling_line(ax, members[label], lambda r: scaled(panel.value(r), scale), style, axis,
                                           label=label, linestyle=style.linestyle, marker=style.marker, markersize=5,
                                           linewidth=1.6, zorder=3)
                if panel.kind == "latency":
                    drawn += self.scaling_line(ax, members[label], lambda r: scaled(r.get("rtt_half_p50_ns"), scale),
                                               style, axis, linestyle=":", linewidth=1.1, alpha=0.9, zorder=2)
                shared |= any(r.pair_sharing == "cpu" for r in members[label])
            low, high = min(drawn), max(drawn)
            if high / low > 20:
                ax.set_yscale("log")
                ax.set_ylim(low / 1.4, high * 1.4)
                self.log_axis_readable(ax.yaxis, low, high, formatter)
                ylabel += ", log scale"
            else:
                ax.set_ylim(0, high * 1.12)
                ax.yaxis.set_major_formatter(self.ticker.FuncFormatter(formatter))
            ax.set_ylabel(ylabel)
            ax.set_title(panel.title, fontsize=10.5, fontweight="bold", loc="left")
            ax.set_xscale("log", base=2)
            ax.xaxis.set_major_locator(self.ticker.FixedLocator(counts))
            ax.xaxis.set_major_formatter(self.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_locator(self.ticker.NullLocator())
            edges = counts + [position(n) for n in cpus]
            ax.set_xlim(min(edges) / 1.3, max(edges) * 1.3)
            ax.set_xlabel(spec.xlabel)
            for n in cpus:
                ax.axvline(position(n), color="0.35", linestyle=":", linewidth=1.2, zorder=1)
                ax.annotate(marker_label(n), (position(n), 1), xycoords=ax.get_xaxis_transform(), xytext=(-3, -4),
                            textcoords="offset points", rotation=90, ha="right", va="top", fontsize=8, color="0.35",
                            bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1), zorder=4)
            # The key in the panel's own legend, after the series (a figure legend outside the panels is not
            # placed reliably together with the footnote).
            handles, labels = ax.get_legend_handles_labels()
            if panel.kind == "latency":
                handles += [Line2D([], [], color="0.3", linewidth=1.6, marker="o", markersize=4),
                            Line2D([], [], color="0.3", linewidth=1.1, linestyle=":")]
                labels += ["p99", "p50 (dotted)"]
            if shared:
                handles.append(Line2D([], [], color="0.3", linestyle="none", marker="o", fillstyle="none"))
                labels.append(f"hollow: {spec.sharing}")
            self.panel_legend(ax, handles, labels)
        where = f"placement {chosen['placement']}"
        if len({row.wait for row in self.all_ok}) > 1:
            where += f", wait {chosen['wait']}"
        fig.suptitle(f"{spec.heading} at {human_size(size)}\n{self.context()} · {where}", fontsize=11)
        notes = [spec.explanation]
        spreads = [(row.get("pair_spread_percent"), row) for row in rows
                   if getattr(row, axis) > 1 and row.get("pair_spread_percent") is not None]
        if spreads:
            spread, row = max(spreads, key=lambda s: s[0])
            notes.append(f"The {axis}' own figures differed by up to {spread:.0f}% ((max − min) / mean; "
                         f"{naming.label(row)}, {row.mode}, {getattr(row, axis)} {axis}).")
        for n in beyond:
            if axis == "pairs":
                notes.append(f"{'2 × ' if workers == 2 else ''}pairs = {n} allowed CPUs at {n / workers:g} pairs: "
                             "outside the pair counts measured.")
            else:
                notes.append(f"{spec.crowd} = {n} allowed CPUs at {n - 1} {axis}: outside the {spec.noun} counts "
                             "measured.")
        self.footnote(fig, notes)
        if axis == "pairs":
            line = f"as many {'workers (2 × pairs)' if workers == 2 else 'same-CPU pairs'} as allowed CPUs"
        else:
            line = f"as many workers ({spec.crowd.split(' = ')[0]}) as allowed CPUs"
        self.save(fig, name, f"{spec.alt} at {human_size(size)}",
                  spec.description.format(size=human_size(size), where=where)
                  + f". Hollow markers: more workers than CPUs, so {spec.sharing}"
                  + (f"; dotted line: {line}." if cpus else "."))


    # -- 8. run comparison

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
            ok = [row for row in run.rows if row.ok and row.mode == mode and row.single]
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
                text = f"{run_letter(run.index)}: {run.label}" + (f" [{run_placement[run.index]}]" if placements_differ else "")
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

    # -- 9. several runs: each cell's ratio against the first run, as a heat map (for compare.html)

    def plot_compare_heatmap(self, comparison: RunsComparison) -> bytes | None:
        """Cells × runs: colour is the log of each cell's ratio against run A, one panel per mode, so that
        red means slower in both (latency: ratio above 1; throughput: below 1). Returns the PNG."""
        name = "compare-heatmap"
        if len(self.runs) < 2:
            return None
        if not comparison.cells:
            self.skip(name, "no cell has an ok headline figure in every run")
            return None
        import numpy as np
        from matplotlib.colors import Normalize
        from matplotlib.patches import Rectangle

        candidates = list(range(1, len(self.runs)))
        modes = sorted({cell.mode for cell in comparison.cells},
                       key=lambda m: (["latency", "throughput"].index(m) if m in ("latency", "throughput") else 2, m))
        varying = comparison_varying_columns(comparison)
        panels = []  # (mode, series labels, sizes, {(series, size): cell}, missing set)
        for mode in modes:
            cells = [cell for cell in comparison.cells if cell.mode == mode]
            series = list(dict.fromkeys(series_key(cell.key) for cell in cells))
            sizes = sorted({cell.size for cell in cells})
            found = {(series_key(cell.key), cell.size): cell for cell in cells}
            # "–" where some run has the cell and another lacks it; a cell no run has stays plain grey.
            gaps = {(series_key(cell.key), cell.size) for cell in comparison.missing
                    if cell.mode == mode and any(f is not None for f in cell.figures)}
            panels.append((mode, series, sizes, found, gaps))
        logs = [abs(math.log10(cell.changes[r].ratio)) for cell in comparison.cells for r in candidates]
        # One colour scale for every panel; at least ±10% (noise must not look loud), saturating at ×2.
        limit = min(max(max(logs), math.log10(1.1)), math.log10(2.0))
        norm = Normalize(-limit, limit)
        heights = [len(series) for _, series, *_ in panels]
        columns = max(len(sizes) for _, _, sizes, *_ in panels) * len(candidates)
        fig, axes = self.plt.subplots(len(panels), 1, squeeze=False, layout="constrained",
                                      figsize=(4.6 + 0.7 * columns, 0.24 * sum(heights) + 1.6 * len(panels) + 1.2),
                                      gridspec_kw={"height_ratios": [h + 3 for h in heights]})
        for ax, (mode, series, sizes, found, gaps) in zip(axes[:, 0], panels):
            throughput = mode == "throughput"
            cmap = self.plt.get_cmap("RdBu" if throughput else "RdBu_r").copy()  # red: slower, either way
            cmap.set_bad("#e4e4e4")
            grid = np.full((len(series), len(sizes) * len(candidates)), np.nan)
            for i, s in enumerate(series):
                for j, run in enumerate(candidates):
                    for k, size in enumerate(sizes):
                        cell = found.get((s, size))
                        column = j * len(sizes) + k
                        if cell is not None:
                            change = cell.changes[run]
                            value = math.log10(change.ratio)
                            grid[i, column] = value
                            significant = change.verdict in (VERDICT_FASTER, VERDICT_SLOWER)
                            judged = change.verdict not in (VERDICT_TOO_FEW, VERDICT_NOT_JUDGED)
                            ax.text(column, i, f"{change.ratio:.2f}" + ("" if judged else "?"), ha="center",
                                    va="center", fontsize=6.8, fontweight="bold" if significant else "normal",
                                    style="normal" if judged else "italic",
                                    color="white" if abs(value) > 0.6 * limit else "black")
                            if significant:
                                ax.add_patch(Rectangle((column - 0.47, i - 0.45), 0.94, 0.9, fill=False,
                                                       edgecolor="black", linewidth=1.3))
                        elif (s, size) in gaps:
                            ax.text(column, i, "–", ha="center", va="center", fontsize=8, color="0.4")
            image = ax.imshow(grid, aspect="auto", cmap=cmap, norm=norm, interpolation="nearest")
            ax.set_yticks(range(len(series)), [series_label(s, varying) for s in series], fontsize=8)
            ax.set_xticks(range(len(sizes) * len(candidates)), [human_size(size) for _ in candidates for size in sizes],
                          fontsize=8)
            ax.xaxis.tick_top()
            ax.tick_params(length=0)
            ax.grid(False)
            for j in range(1, len(candidates)):
                ax.axvline(j * len(sizes) - 0.5, color="white", linewidth=4)
            for j, run in enumerate(candidates):
                ax.annotate(f"{run_letter(run)} vs {run_letter(0)}", xy=((j + 0.5) * len(sizes) - 0.5, 1.0),
                            xycoords=("data", "axes fraction"), xytext=(0, 20), textcoords="offset points",
                            ha="center", va="bottom", fontsize=9, fontweight="bold")
            metric = "bytes/s" if throughput else "p50 RTT/2"
            ax.set_title(f"{mode} ({metric} per repetition): ratio to run {run_letter(0)}", fontsize=10, pad=38,
                         loc="left")
            # About three inches of colour bar whatever the panel's height.
            bar = fig.colorbar(image, ax=ax, shrink=min(1.0, 3.2 / (0.24 * len(series) + 0.8)), aspect=14, pad=0.02,
                               extend="both")
            steps = (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0) if limit > math.log10(1.4) else (0.8, 0.91, 1.0, 1.1, 1.25)
            ticks = [r for r in steps if abs(math.log10(r)) <= limit + 1e-9]
            bar.set_ticks([math.log10(r) for r in ticks], labels=[f"×{r:g}" for r in ticks])
            bar.ax.tick_params(labelsize=7.5)
            top, bottom = ("faster", "slower") if throughput else ("slower", "faster")
            bar.ax.text(0.5, 1.04, top, transform=bar.ax.transAxes, ha="center", va="bottom", fontsize=8)
            bar.ax.text(0.5, -0.04, bottom, transform=bar.ax.transAxes, ha="center", va="top", fontsize=8)
        letters = "; ".join(f"{run_letter(r.index)} = {r.label}" for r in self.runs)
        fig.suptitle(f"Each cell against run {run_letter(0)}: the {len(comparison.cells)} cells present in every run"
                     f"\n{letters}", fontsize=10)
        self.footnote(fig, [
            f"Number: the ratio to run {run_letter(0)} as `ipcbench compare` computes it (median of the ratios of "
            "per-repetition figures); colour: its log, the same scale in every panel, red slower, blue faster.",
            f"Bold and outlined: significant at alpha = {comparison.alpha} (two-sided exact Mann-Whitney U on the "
            "repetitions). Italic with ?: too few repetitions to judge, or no per-repetition figures.",
            "–: no ok figure in some run (compare.html lists those cells); plain grey: in no run (unavailable)."],
            all_runs=True)
        return self.save(fig, name, "Cells against the first run",
                         f"Every cell present in all runs, its ratio to run {run_letter(0)} per run (heat map; "
                         "compare.html has the table, the verdicts and the runs' metadata).")

    def plot_all(self) -> None:
        for plot in (self.plot_latency, self.plot_throughput, self.plot_tail, self.plot_copies, self.plot_placement,
                     self.plot_wait, self.plot_scaling, self.plot_scaling_clients, self.plot_scaling_readers,
                     self.plot_runs):
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
    if plotter.compare_page:
        parts.append(f'<p><a href="compare.html">The {len(runs)} runs compared cell by cell</a> (run A the baseline; '
                     "ratios, significance, heat map, cells missing from some run).</p>")
    parts.append("<h2>Plots</h2>")
    if not plotter.written:
        parts.append("<p>No plots were drawn.</p>")
    for name, title, description in plotter.written:
        parts.append(f'<figure id="{esc(name)}"><h3>{esc(title)}</h3><a href="{esc(name)}.svg">'
                     f'<img src="{esc(name)}.png" alt="{esc(title)}"></a>'
                     f'<figcaption>{esc(description)} <a href="{esc(name)}.svg">SVG</a></figcaption></figure>')
    bad = [row for row in plotter.rows if not row.ok]
    if bad:
        pairs = any(row.pairs > 1 for row in plotter.rows)  # a CSV from before --pairs: no such column
        clients = any(row.clients > 1 for row in plotter.rows)  # nor before --clients
        parts.append("<h2>Cells not plotted</h2><table><tr><th>run</th><th>mechanism</th><th>variant</th>"
                     "<th>mode</th><th>size</th><th>placement</th>" + ("<th>pairs</th>" if pairs else "")
                     + ("<th>clients</th>" if clients else "") + "<th>status</th></tr>")
        for row in bad:
            parts.append("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in (
                runs[row.run].label, row.mechanism, row.variant, row.mode, human_size(row.size), row.placement,
                *([row.pairs] if pairs else []), *([row.clients] if clients else []), row.status)) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    text = ("\n".join(parts) + "\n").encode("utf-8")
    out_dir.write("index.html", lambda handle: handle.write(text))
    return out_dir.join("index.html")


# ----------------------------------------------------------------------------------------------
# compare.html: several runs side by side, cell by cell against the first


PAGE_STYLE = ("<style>body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222}"
              "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.2em .5em;"
              "text-align:left;vertical-align:top;font-size:.88em}th{background:#f3f3f3}td.num{text-align:right;"
              "font-variant-numeric:tabular-nums}td.cmd{font-family:monospace;word-break:break-all;max-width:40em}"
              "img{max-width:100%;height:auto;border:1px solid #ddd}.note{color:#664}small{color:#666}"
              "td.slower{background:#f8d3d0}td.faster{background:#d3e2f5}td.few{color:#777;font-style:italic}"
              "td.sig{font-weight:bold}</style>")


def format_figure(mode: str, value: float) -> str:
    """A headline figure as `ipcbench compare` shows it: a duration for latency, GB/s for throughput."""
    return f"{value / 1e9:.3f} GB/s" if mode == "throughput" else human_time_ns(value)


def comparison_metadata_rows(run: Run) -> list[tuple[str, str]]:
    """What a reader needs to trust a comparison: the index's rows plus how the run repeated its cells
    and what the machine was like (the conditions `ipcbench compare` warns about)."""
    meta = run.metadata or {}
    config = meta.get("configuration") or {}
    tool = meta.get("tool") or {}
    steal, floor = run_conditions(run)
    conditions = ", ".join(text for text in (
        "" if steal is None else f"{steal:.1f}% CPU stolen by the host",
        "" if floor is None else f"cache-line floor {floor:.0f} ns") if text)
    policies = ", ".join(f"{name} {config[name]}" for name in ("produce", "touch") if config.get(name))
    waits = config.get("waits")
    rows = [(key, value) for key, value in metadata_rows(run) if key != "ipcbench"]
    rows[3:3] = [("finished", format_date(meta.get("finished_at")))]
    rows += [
        ("ipcbench", " ".join(str(x) for x in (tool.get("version"), tool.get("commit")) if x)),
        ("repetitions", str(config.get("repetitions", ""))),
        ("repetition order", str(config.get("repetition_order", ""))),
        ("produce, touch", policies),
        ("wait strategies", ", ".join(map(str, waits)) if isinstance(waits, list) else str(waits or "")),
        ("conditions (median over cells)", conditions),
    ]
    return rows


def key_column_hints(runs: list[Run]) -> list[str]:
    """Why cells may not match: a column cells match on that is constant within each run but differs
    between runs (say produce write in one, header in the other) leaves those runs nothing in common."""
    hints = []
    for i, name in enumerate(COMPARE_KEY_NAMES):
        if name in ("mechanism", "variant", "mode", "size"):
            continue
        values = [{row.compare_key()[i] for row in run.rows} for run in runs]
        if all(len(v) == 1 for v in values) and len(set().union(*values)) > 1:
            listed = ", ".join(f"{run_letter(run.index)} {next(iter(v)) or '(empty)'}" for run, v in zip(runs, values))
            hints.append(f"The runs differ in {name} ({listed}): cells match only where it is the same, as in "
                         "`ipcbench compare`.")
    return hints


def write_compare_page(plotter, comparison: RunsComparison, heatmap: bytes | None, out_dir: OutputDirectory,
                       warnings: list[str]) -> str:
    esc = html.escape
    runs = plotter.runs
    letters = [run_letter(run.index) for run in runs]
    varying = comparison_varying_columns(comparison)
    shown = [(i, name) for i, name in enumerate(COMPARE_KEY_NAMES)
             if name in ("mechanism", "variant", "wait", "mode", "size", "placement") or name in varying]

    def key_cells(key: tuple) -> str:
        return "".join(f"<td>{esc(human_size(key[i]) if name == 'size' else str(key[i]))}</td>" for i, name in shown)

    key_header = "".join(f"<th>{esc(name)}</th>" for _, name in shown)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>ipcbench: {len(runs)} runs compared — {esc(plotter.context())}</title>", PAGE_STYLE,
             "</head><body>", f"<h1>ipcbench: {len(runs)} runs compared</h1>",
             f"<p>Run {letters[0]} is the baseline: every other run is compared with it cell by cell, by the rule of "
             "<code>ipcbench compare</code> (README, <i>Comparing runs</i>): the headline figure of each repetition "
             "(p50 RTT/2 for latency, bytes/s for throughput, from <code>headline_per_repetition</code>), a two-sided "
             f"exact Mann–Whitney U test at alpha = {esc(str(comparison.alpha))}, and the ratio to run {letters[0]} as "
             "the median of the ratios of one repetition each, with its interval at 1 − alpha. Cells match on "
             f"{esc(', '.join(name for name in COMPARE_KEY_NAMES if name not in COUNT_COLUMNS or name in varying))}.</p>",
             "<h2>Runs</h2><table>",
             "<tr><th></th>" + "".join(f"<th>{letter}: {esc(run.label)}</th>" for letter, run in zip(letters, runs))
             + "</tr>"]
    table = [comparison_metadata_rows(run) for run in runs]
    for i, (key, _) in enumerate(table[0]):
        cls = ' class="cmd"' if key in ("command line", "results") else ""
        parts.append(f"<tr><th>{esc(key)}</th>" + "".join(f"<td{cls}>{esc(str(rows[i][1]) or '—')}</td>" for rows in table)
                     + "</tr>")
    parts.append("</table><h2>Verdicts</h2><ul>")
    for run in runs[1:]:
        parts.append(f"<li><b>{run_letter(run.index)} vs {letters[0]}</b>: {esc(verdict_summary(comparison, run.index))}")
        warning = conditions_warning(runs[0], run)
        if warning:
            parts.append(f'<br><span class="note">Note: {esc(warning)}.</span>')
        parts.append("</li>")
    parts.append("</ul>")
    for hint in key_column_hints(runs):
        parts.append(f'<p class="note">{esc(hint)}</p>')
    if comparison.missing:
        parts.append(f'<p class="note">{len(comparison.missing)} cell(s) lack an ok figure in at least one run and '
                     'are not judged: <a href="#missing">listed below</a>.</p>')
    if heatmap:
        parts.append('<h2>Heat map</h2><a href="compare-heatmap.svg"><img alt="each cell\'s ratio to run '
                     f'{letters[0]}, per run" src="data:image/png;base64,{base64.b64encode(heatmap).decode("ascii")}">'
                     '</a><p><small>Also beside this page: compare-heatmap.png, compare-heatmap.svg.</small></p>')
    parts.append(f"<h2>Cells in every run ({len(comparison.cells)})</h2>")
    if comparison.cells:
        parts.append("<table><tr>" + key_header + f"<th>metric</th><th>{letters[0]}</th>" + "".join(
            f"<th>{letter}</th><th>{letter}/{letters[0]}</th><th>interval</th><th>p</th><th>reps</th><th>verdict</th>"
            for letter in letters[1:]) + "</tr>")
        for cell in comparison.cells:
            first = cell.changes[1]
            row = ["<tr>", key_cells(cell.key),
                   f"<td>{'bytes/s' if cell.mode == 'throughput' else 'p50 RTT/2'}</td>",
                   f'<td class="num">{esc(format_figure(cell.mode, first.baseline))}</td>']
            for change in cell.changes[1:]:
                interval = ("" if change.ratio_low is None else f"{change.ratio_low:.3f}–{change.ratio_high:.3f}")
                css = {VERDICT_SLOWER: ' class="slower sig"', VERDICT_FASTER: ' class="faster sig"',
                       VERDICT_TOO_FEW: ' class="few"', VERDICT_NOT_JUDGED: ' class="few"'}.get(change.verdict, "")
                row += [f'<td class="num">{esc(format_figure(cell.mode, change.candidate))}</td>',
                        f'<td class="num">{change.ratio:.3f}</td><td class="num">{esc(interval)}</td>',
                        f'<td class="num">{"" if change.p_value is None else f"{change.p_value:.3f}"}</td>',
                        f'<td class="num">{change.baseline_repetitions}/{change.candidate_repetitions}</td>',
                        f"<td{css}>{esc(change.verdict_text)}</td>"]
            parts.append("".join(row) + "</tr>")
        parts.append("</table>")
    else:
        parts.append("<p>No cell has an ok headline figure in every run: nothing to judge.</p>")
    # Cells not in every run are listed, never dropped silently: with their status in each run.
    some = [cell for cell in comparison.missing if any(f is not None for f in cell.figures)]
    none = [cell for cell in comparison.missing if all(f is None for f in cell.figures)]

    def missing_table(cells: list[ComparedCell]) -> str:
        lines = ["<table><tr>" + key_header + "".join(f"<th>{letter}</th>" for letter in letters) + "</tr>"]
        for cell in cells:
            lines.append("<tr>" + key_cells(cell.key) + "".join(
                f"<td>{esc(cell.reason_missing(r))}</td>" for r in range(len(runs))) + "</tr>")
        return "\n".join(lines) + "</table>"

    parts.append(f'<h2 id="missing">Cells missing from some run ({len(some)})</h2>')
    parts.append(missing_table(some) if some else "<p>None: every cell with an ok figure in one run has one in all.</p>")
    if none:
        parts.append(f"<details><summary>{len(none)} cell(s) with no ok figure in any run (unavailable or failed "
                     f"everywhere)</summary>{missing_table(none)}</details>")
    notes = list(warnings)
    if comparison.duplicates:
        notes.append(f"{comparison.duplicates} row(s) repeat a cell already seen in the same run: the first ok row "
                     "of each cell is used")
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f'<li class="note">{esc(n)}</li>' for n in notes) + "</ul>")
    parts.append("</body></html>")
    text = ("\n".join(parts) + "\n").encode("utf-8")
    out_dir.write("compare.html", lambda handle: handle.write(text))
    return out_dir.join("compare.html")


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
    parser.add_argument("--wait", help="wait strategy for the size sweeps, copies and placement plots (default: "
                                       "block, else the one with most cells); the wait plot shows every one")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                        help="with several CSVs: significance level of the per-cell test on compare.html, as "
                             "`ipcbench compare --alpha` (default 0.01)")
    parser.add_argument("--metric", default="one_way_p50_ns",
                        help="metric for the run comparison: a latency column such as one_way_p99_ns or "
                             "rtt_half_p50_ns (one_way_* falls back to rtt_half_*), bytes_per_s or msgs_per_s "
                             "(default: one_way_p50_ns)")
    args = parser.parse_args(argv)
    args.size = None if args.size is None else parse_size(args.size)
    if not 0 < args.alpha < 0.5:
        raise InputError(f"--alpha {args.alpha}: out of range; allowed: above 0 and below 0.5")
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
    # Before anything is drawn, so a malformed per-repetition figure stops the run, not half of it.
    comparison = compare_runs(runs, args.alpha) if len(runs) > 1 else None
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
    for name in ["index.html", "compare.html"] + [f"{plot}.{extension}" for plot in PLOT_NAMES
                                                  for extension in ("png", "svg")]:
        out_dir.check_replaceable(name)
    plotter = Plotter(runs, merged, args, out_dir, notes)
    plotter.plot_all()
    compare_page = None
    if comparison is not None:
        heatmap = plotter.plot_compare_heatmap(comparison)
        compare_page = write_compare_page(plotter, comparison, heatmap, out_dir, warnings)
        plotter.compare_page = True
    index = write_index(plotter, out_dir, warnings)
    # Drop plots an earlier invocation left here that this one did not draw, so index and files agree.
    written = {name for name, *_ in plotter.written}
    for name in PLOT_NAMES:
        if name not in written:
            for extension in ("png", "svg"):
                out_dir.remove_stale(f"{name}.{extension}")
    if compare_page is None:
        out_dir.remove_stale("compare.html")
    out_dir.close()
    for message in warnings + plotter.notes:
        print(f"{PROG}: note: {message}", file=sys.stderr)
    excluded = [row for row in merged if not row.ok]
    waits = len({row.wait for row in plotter.ok}) > 1
    print(f"{ok_count} ok cell(s) plotted" + (f", {len(excluded)} not ok left out" if excluded else "")
          + f"; single-size plots at {human_size(plotter.size)}, sweeps at placement {plotter.placement}"
          + (f", wait {plotter.wait}" if waits else ""))
    for name, *_ in plotter.written:
        for extension in ("png", "svg"):
            print(out_dir.join(f"{name}.{extension}"))
    if compare_page:
        print(compare_page)
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
