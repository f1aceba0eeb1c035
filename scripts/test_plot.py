"""Tests for scripts/plot.py. Run: .venv/bin/python -m pytest scripts/test_plot.py

The end-to-end test runs the real benchmark binary named by IPCBENCH_BIN (for example
.build/debug/ipcbench); without it that test is skipped. The others use synthetic CSVs.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLOT = Path(__file__).resolve().parent / "plot.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
STATS = ["min", "p50", "p90", "p99", "p99_9", "p99_99", "max", "mean", "stddev"]
COLUMNS = (
    ["run_id", "mechanism", "variant", "copies", "touch", "mode", "message_bytes", "messages", "repetitions",
     "placement", "producer_cpu", "consumer_cpu", "memory_node"]
    + [f"rtt_half_{s}_ns" for s in STATS] + [f"one_way_{s}_ns" for s in STATS]
    + ["msgs_per_s", "bytes_per_s", "cv", "lost", "reordered", "corrupt", "status"]
)
SIZES = [64, 512, 4096, 32768, 262144, 1048576]
# Per-mechanism factors so synthetic series do not sit on top of each other in the plots.
MECHANISM_FACTOR = {"pipe": 1.0, "unix-stream": 0.8, "tcp": 1.35, "shm": 1.0, "sysv-msg": 1.1}


def run_plot(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(PLOT), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def assert_png(path: Path) -> None:
    assert path.is_file(), f"missing {path}"
    data = path.read_bytes()
    assert len(data) > 1000, f"{path} is suspiciously small"
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"


def assert_clean_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("plot.py: error:"), lines[0]
    assert fragment in lines[0], lines[0]


def row(mechanism, variant, copies, mode, size, placement, status="ok", scale=1.0, run_id="20260101T000000",
        extra=None) -> dict:
    """A plausible result row: latency grows with size, throughput with size up to a plateau."""
    r = {c: "" for c in COLUMNS}
    r.update(run_id=run_id, mechanism=mechanism, variant=variant, copies=str(copies), touch="read", mode=mode,
             message_bytes=str(size), repetitions="3", placement=placement, producer_cpu="0",
             consumer_cpu="0" if placement == "same-cpu" else "1", lost="0", reordered="0", corrupt="0",
             status=status)
    if status == "ok":
        base = ({0: 2_000, 1: 4_000, 2: 8_000}.get(copies, 5_000) * scale * MECHANISM_FACTOR.get(mechanism, 1.0)
                * (0.3 if placement == "same-cpu" else 1))
        if mode == "latency":
            p50 = base + size * 0.05 * (copies + 1)
            values = {"min": p50 * 0.6, "p50": p50, "p90": p50 * 1.4, "p99": p50 * 3, "p99_9": p50 * 6,
                      "p99_99": p50 * 9, "max": p50 * 12, "mean": p50 * 1.2, "stddev": p50 * 0.5}
            for s in STATS:
                r[f"one_way_{s}_ns"] = f"{values[s]:.1f}"
                r[f"rtt_half_{s}_ns"] = f"{values[s] * 1.05:.1f}"
            r["messages"] = "10000"
            r["msgs_per_s"] = f"{1e9 / (2 * p50):.1f}"
        else:
            rate = min(size / (base / 1e9 + size / (20e9 / (copies + 1))), 20e9)
            r["messages"] = str(int(rate / size * 0.25))
            r["msgs_per_s"] = f"{rate / size:.1f}"
            r["bytes_per_s"] = f"{rate:.1f}"
        r["cv"] = "0.0300"
    if extra:
        r.update(extra)
    return r


def write_csv(path: Path, rows: list[dict], columns=COLUMNS) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_metadata(csv_path: Path, hostname: str, started: str) -> None:
    name = "metadata.json" if csv_path.name == "results.csv" else csv_path.name[:-4] + ".metadata.json"
    meta = {
        "run_id": "x", "started_at": started, "state": "complete", "command_line": ["ipcbench", "run", "--quick"],
        "host": {"hostname": hostname, "kernel": "Linux 6.1 <test>", "cpu_model": "Test CPU", "architecture": "x86_64",
                 "online_cp_us": [0, 1], "allowed_cp_us": [0, 1], "numa_nodes": [0], "smt_active": False,
                 "virtualized": True, "clocksource": "tsc", "cpuidle_driver": "haltpoll"},
        "timer_overhead": {"nanoseconds_per_read": 23.5, "smallest_step_nanoseconds": 20},
    }
    (csv_path.parent / name).write_text(json.dumps(meta))


SERIES = [
    ("pipe", "write/read", 2), ("unix-stream", "write/read", 2), ("tcp", "nodelay", 2), ("tcp", "default", 2),
    ("shm", "in-place/futex", 0), ("shm", "copy-in/futex", 1), ("shm", "copy-in-out/spin", 2),
]


def synthetic_rows(placements=("cross-cpu", "same-cpu"), scale=1.0, sizes=SIZES, series=SERIES) -> list[dict]:
    rows = []
    for placement in placements:
        for mechanism, variant, copies in series:
            for mode in ("latency", "throughput"):
                if mechanism == "tcp" and (variant == "nodelay") != (mode == "latency"):
                    continue
                for size in sizes:
                    rows.append(row(mechanism, variant, copies, mode, size, placement, scale=scale))
    rows.append(row("sysv-msg", "msgsnd/msgrcv", 2, "latency", 1048576, "cross-cpu",
                    status="unavailable: 1 MiB exceeds kernel.msgmax (8192)"))
    rows.append(row("pipe", "vmsplice", 1, "throughput", 64, "cross-cpu", status="failed: worker exited with status 1"))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# End to end with the real binary


def test_real_quick_run(tmp_path):
    binary = os.environ.get("IPCBENCH_BIN")
    if not binary:
        pytest.skip("IPCBENCH_BIN is not set (point it at a built ipcbench binary, e.g. .build/debug/ipcbench)")
    if not os.access(binary, os.X_OK):
        pytest.skip(f"IPCBENCH_BIN={binary} is not an executable file")
    results = tmp_path / "results.csv"
    # pipe copies twice, memfd not at all; the default placements are cross-cpu and same-cpu.
    bench = subprocess.run([binary, "run", "--quick", "--quiet", "--no-plots", "--mechanisms", "pipe,memfd",
                            "--out", str(results)],
                           capture_output=True, text=True, timeout=300)
    assert bench.returncode in (0, 1), bench.stderr  # 1: some cell failed; still plottable
    assert results.is_file() and (tmp_path / "metadata.json").is_file()
    result = run_plot(results)
    assert result.returncode == 0, result.stderr
    plots = tmp_path / "plots"
    for name in ("latency-vs-size", "throughput-vs-size", "tail-latency", "copies", "placement"):
        assert_png(plots / f"{name}.png")
        assert (plots / f"{name}.svg").stat().st_size > 1000
        assert str(plots / f"{name}.png") in result.stdout
    index = (plots / "index.html").read_text()
    assert "latency-vs-size.png" in index and "clocksource" in index and "timer overhead" in index
    hostname = json.loads((tmp_path / "metadata.json").read_text())["host"]["hostname"]
    assert hostname in index


# ---------------------------------------------------------------------------------------------------------------
# Synthetic data


def test_many_series_copies_and_placements(tmp_path):
    results = write_csv(tmp_path / "results.csv", synthetic_rows())
    write_metadata(results, "bench-a", "2026-01-01T10:00:00Z")
    result = run_plot(results)
    assert result.returncode == 0, result.stderr
    plots = tmp_path / "plots"
    for name in ("latency-vs-size", "throughput-vs-size", "tail-latency", "copies", "placement"):
        assert_png(plots / f"{name}.png")
        assert (plots / f"{name}.svg").is_file()
    assert not (plots / "run-comparison.png").exists()  # one CSV only
    # Default single size: the one closest to 4 KiB.
    assert "at 4 KiB" in result.stdout
    index = (plots / "index.html").read_text()
    assert "bench-a" in index and "haltpoll" in index and "23.5 ns per clock read" in index
    assert "unavailable: 1 MiB exceeds" in index and "failed: worker exited" in index
    assert "1 failed, 1 unavailable" in index or ("1 failed" in index and "1 unavailable" in index)


def test_ranking_on_top_of_index(tmp_path):
    results = write_csv(tmp_path / "results.csv", synthetic_rows())
    write_metadata(results, "bench-a", "2026-01-01T10:00:00Z")
    meta_path = tmp_path / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["ranking"] = ["Fastest first (…):", "  latency 16 B cross-cpu  shm <b>x</b> 90 ns < pipe 5.0 µs ×55.56"]
    meta_path.write_text(json.dumps(meta))
    result = run_plot(results)
    assert result.returncode == 0, result.stderr
    index = (tmp_path / "plots" / "index.html").read_text()
    ranking = index.index("<h2>Fastest first</h2><pre>")
    assert ranking < index.index("<h2>Runs</h2>") < index.index("<h2>Plots</h2>")
    assert "shm &lt;b&gt;x&lt;/b&gt; 90 ns &lt; pipe 5.0 µs ×55.56" in index  # escaped, never markup
    # No ranking in the metadata: no section.
    meta.pop("ranking")
    meta_path.write_text(json.dumps(meta))
    assert run_plot(results).returncode == 0
    assert "Fastest first" not in (tmp_path / "plots" / "index.html").read_text()


def test_series_labels_distinguish_variants(tmp_path):
    sys.path.insert(0, str(PLOT.parent))
    try:
        import plot
    finally:
        sys.path.pop(0)
    results = write_csv(tmp_path / "results.csv", synthetic_rows(placements=("cross-cpu",)))
    rows = [r for r in plot.read_csv(str(results), 0) if r.ok]
    naming = plot.name_series(rows)
    labels = set(naming.labels.values())
    assert {"pipe", "unix-stream", "tcp (nodelay)", "tcp (default)", "shm (in-place/futex)", "shm (copy-in/futex)",
            "shm (copy-in-out/spin)"} <= labels
    # One colour per mechanism, a different line style per variant.
    styles = naming.styles
    assert styles["shm (in-place/futex)"].color == styles["shm (copy-in/futex)"].color
    assert styles["shm (in-place/futex)"].linestyle != styles["shm (copy-in/futex)"].linestyle
    assert styles["pipe"].color != styles["unix-stream"].color


def test_wait_plot_compares_strategies(tmp_path):
    """With more than one --wait strategy, a wait plot shows latency and CPU per strategy; series labels
    say which wait a line is; without a wait column every row counts as block (no wait plot)."""
    columns = COLUMNS + ["wait", "producer_cpu_ns_per_msg", "consumer_cpu_ns_per_msg"]
    rows = []
    for wait, factor in (("block", 1.0), ("poll", 0.2), ("epoll", 1.2)):
        for mechanism, variant in (("pipe", "write/read"), ("tcp", "nodelay")):
            for size in (16, 4096):
                for placement in ("cross-cpu", "same-cpu"):
                    r = row(mechanism, variant, 2, "latency", size, placement, scale=factor)
                    r.update(wait=wait, producer_cpu_ns_per_msg="2500.0", consumer_cpu_ns_per_msg="2400.0")
                    rows.append(r)
    rows.append(dict(row("sysv-msg", "two-queues", 2, "latency", 16, "cross-cpu",
                         status="unavailable: System V queues are not file descriptors"), wait="epoll"))
    results = write_csv(tmp_path / "results.csv", rows, columns=columns)
    result = run_plot(results)
    assert result.returncode == 0, result.stderr
    assert_png(tmp_path / "plots" / "wait.png")
    index = (tmp_path / "plots" / "index.html").read_text()
    assert "wait.png" in index and "Wait strategies" in index
    sys.path.insert(0, str(PLOT.parent))
    try:
        import plot
    finally:
        sys.path.pop(0)
    naming = plot.name_series([r for r in plot.read_csv(str(results), 0) if r.ok])
    assert {"pipe (wait=block)", "pipe (wait=poll)", "tcp (wait=epoll)"} <= set(naming.labels.values())
    # An old CSV without the column: all block, one strategy, so no wait plot.
    old = write_csv(tmp_path / "old.csv", synthetic_rows(placements=("cross-cpu",)))
    result = run_plot(old, "--out", tmp_path / "old-plots")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "old-plots" / "wait.png").exists()
    assert "wait: skipped — one wait strategy in the data (block)" in result.stderr


def test_two_runs_comparison_and_options(tmp_path):
    first = write_csv(tmp_path / "a.csv", synthetic_rows(placements=("cross-cpu",)))
    write_metadata(first, "bench-a", "2026-01-01T10:00:00Z")
    second = write_csv(tmp_path / "b.csv", synthetic_rows(placements=("cross-cpu", "same-cpu"), scale=1.6))
    write_metadata(second, "bench-b", "2026-02-01T12:30:00Z")
    out = tmp_path / "out"
    result = run_plot(first, second, "--out", out, "--size", "32K", "--metric", "one_way_p99")
    assert result.returncode == 0, result.stderr
    for name in ("latency-vs-size", "throughput-vs-size", "tail-latency", "copies", "placement", "run-comparison"):
        assert_png(out / f"{name}.png")
    index = (out / "index.html").read_text()
    assert "bench-a 2026-01-01 10:00 UTC" in index and "bench-b 2026-02-01 12:30 UTC" in index
    assert "at 32 KiB" in result.stdout
    # Throughput metric works too, and a re-run that draws fewer plots removes the stale ones.
    result = run_plot(first, "--out", out, "--metric", "bytes_per_s")
    assert result.returncode == 0, result.stderr
    assert not (out / "run-comparison.png").exists() and not (out / "placement.png").exists()


def test_missing_metadata_one_size_and_extra_columns(tmp_path):
    rows = [row("pipe", "write/read", 2, mode, 4096, "cross-cpu", extra={"future_column": "7"})
            for mode in ("latency", "throughput")]
    rows[0]["one_way_p50_ns"] = ""  # falls back to the half round trip
    columns = COLUMNS[:5] + ["future_column"] + COLUMNS[5:]  # unknown column in the middle: names, not positions
    results = write_csv(tmp_path / "only.csv", rows, columns)
    result = run_plot(results)
    assert result.returncode == 0, result.stderr
    for name in ("latency-vs-size", "throughput-vs-size", "tail-latency"):
        assert_png(tmp_path / "only.plots" / f"{name}.png")  # X.csv -> X.plots/ beside it
    assert "no metadata" in result.stderr


# ---------------------------------------------------------------------------------------------------------------
# The plots directory: its own per CSV, never written through a symlink or into someone else's directory


def small_csv(path: Path) -> Path:
    return write_csv(path, [row("pipe", "write/read", 2, mode, 4096, "cross-cpu") for mode in ("latency", "throughput")])


def plot_module():
    sys.path.insert(0, str(PLOT.parent))
    try:
        import plot
    finally:
        sys.path.pop(0)
    return plot


def test_distinct_csvs_in_one_directory_get_distinct_plot_folders(tmp_path):
    for name in ("results.csv", "a.csv", "b.csv"):
        result = run_plot(small_csv(tmp_path / name))
        assert result.returncode == 0, result.stderr
    for folder, csv_name in (("plots", "results.csv"), ("a.plots", "a.csv"), ("b.plots", "b.csv")):
        index = tmp_path / folder / "index.html"
        assert index.is_file(), folder
        assert csv_name in index.read_text()
        assert_png(tmp_path / folder / "latency-vs-size.png")
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["a.plots", "b.plots", "plots"]
    # Files go through exclusive temporary names; none is left behind.
    assert not [p for p in tmp_path.rglob("*.tmp")]


def assert_refused(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert_clean_error(result, fragment)
    assert "refusing" in result.stderr


def test_symlinked_plot_directory_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "index.html").write_text("keep me")
    (tmp_path / "plots").symlink_to(elsewhere)
    assert_refused(run_plot(small_csv(tmp_path / "results.csv")), "symlink")
    assert (elsewhere / "index.html").read_text() == "keep me"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["index.html"]
    # A symlink to a directory given as --out is refused the same way.
    assert_refused(run_plot(tmp_path / "results.csv", "--out", tmp_path / "plots"), "symlink")


def test_plot_directory_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "r.plots").write_text("a file")
    assert_refused(run_plot(small_csv(tmp_path / "r.csv")), "not a directory")
    assert (tmp_path / "r.plots").read_text() == "a file"


@pytest.mark.parametrize("name", ["index.html", "latency-vs-size.png", "run-comparison.svg", "compare.html"])
def test_symlink_inside_the_plot_directory_is_refused_before_drawing(tmp_path, name):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / name).symlink_to(victim)
    assert_refused(run_plot(small_csv(tmp_path / "results.csv")), "symlink")
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in plots.iterdir()) == [name]  # nothing drawn, the link left alone


def test_directory_or_file_of_another_user_is_refused(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to give files to another user")
    other = 65534  # nobody
    plots = tmp_path / "plots"
    plots.mkdir()
    plots.chmod(0o777)
    os.chown(plots, other, other)
    assert_refused(run_plot(small_csv(tmp_path / "results.csv")), "belongs to uid 65534")
    assert list(plots.iterdir()) == []
    # A regular file of another user inside a directory of ours is not replaced either.
    mine = tmp_path / "mine.plots"
    mine.mkdir()
    theirs = mine / "index.html"
    theirs.write_text("theirs")
    os.chown(theirs, other, other)
    assert_refused(run_plot(small_csv(tmp_path / "mine.csv")), "owned by uid 65534")
    assert theirs.read_text() == "theirs" and sorted(p.name for p in mine.iterdir()) == ["index.html"]


def test_symlink_swapped_in_while_writing_is_not_followed(tmp_path):
    plot = plot_module()
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    out = plot.OutputDirectory(str(tmp_path / "plots"))

    def fill(handle):
        handle.write(b"new")
        (tmp_path / "plots" / "index.html").symlink_to(victim)  # appears between the checks and the rename

    with pytest.raises(plot.InputError, match="refusing"):
        out.write("index.html", fill)
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["index.html"]  # the link; no temp file
    # Our own regular file is replaced by a rename (a new inode: hard links to the old one keep their text).
    (tmp_path / "plots" / "index.html").unlink()
    out.write("index.html", lambda handle: handle.write(b"one"))
    (tmp_path / "link").hardlink_to(tmp_path / "plots" / "index.html")
    out.write("index.html", lambda handle: handle.write(b"two"))
    out.close()
    assert (tmp_path / "plots" / "index.html").read_text() == "two" and (tmp_path / "link").read_text() == "one"


def test_only_failed_rows_is_an_error(tmp_path):
    results = write_csv(tmp_path / "results.csv", [row("pipe", "write/read", 2, "latency", 64, "cross-cpu",
                                                       status="failed: timeout")])
    assert_clean_error(run_plot(results), "no rows with status ok")


@pytest.mark.parametrize("content, fragment", [
    ("", "empty file"),
    (",".join(COLUMNS) + "\n", "no result rows"),
    ("a,b,c\n1,2,3\n", "missing column(s)"),
    (",".join(COLUMNS) + "\n" + "1,2,3\n", "expected"),
    (",".join(COLUMNS) + "\n" + ",".join(["x"] * len(COLUMNS)) + "\n", "not a number"),
    (",".join(COLUMNS) + '\n"unterminated,2\n', "malformed CSV"),
])
def test_malformed_input(tmp_path, content, fragment):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    assert_clean_error(run_plot(path), fragment)


def test_binary_garbage_and_missing_file(tmp_path):
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(bytes(range(256)) * 4)
    result = run_plot(garbage)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert_clean_error(run_plot(tmp_path / "nope.csv"), "no such file")


def test_bad_options(tmp_path):
    results = write_csv(tmp_path / "results.csv", synthetic_rows(placements=("cross-cpu",), sizes=[64, 4096]))
    assert_clean_error(run_plot(results, "--size", "123"), "no ok rows of that size")
    assert_clean_error(run_plot(results, "--size", "lots"), "not a size")
    assert_clean_error(run_plot(results, "--metric", "bogus"), "unknown")
    assert_clean_error(run_plot(results, "--placement", "cross-numa"), "no ok rows at that placement")
    assert_clean_error(run_plot(results, "--wait", "poll"), "no ok rows with that wait strategy")
    assert_clean_error(run_plot(), "required")


def test_human_sizes():
    sys.path.insert(0, str(PLOT.parent))
    try:
        import plot
    finally:
        sys.path.pop(0)
    assert [plot.human_size(s) for s in (64, 4096, 1 << 20, 1536, 3 << 30)] == ["64 B", "4 KiB", "1 MiB", "1.5 KiB",
                                                                                "3 GiB"]
    assert plot.parse_size("4K") == 4096 and plot.parse_size("1MiB") == 1 << 20 and plot.parse_size("100") == 100


# ---------------------------------------------------------------------------------------------------------------
# Families, colours and panels (issue 22)

# Every id in MechanismRegistry.all (Sources/IPCBench/Mechanisms/MechanismRegistry.swift), hard-coded on purpose: a new
# mechanism must be added here and to plot.MECHANISM_FAMILIES, or the tests below fail.
REGISTRY_IDS = ["pipe", "fifo", "unix-stream", "tcp", "sysv-msg", "posix-mq", "unix-dgram", "unix-seqpacket", "udp",
                "signal", "vmsplice", "cma", "memfd", "shm-posix", "shm-sysv", "mmap-file", "shm-huge", "shm-memfd"]
MECHANISMS_DIR = PLOT.parent.parent / "Sources" / "IPCBench" / "Mechanisms"
# The shared-memory rings: one SharedRingMechanism per SegmentBackend, whose id is the mechanism's.
SEGMENTS_DIR = PLOT.parent.parent / "Sources" / "IPCBench" / "Ring" / "Segments"


def test_every_registry_mechanism_has_a_family():
    plot = plot_module()
    for mechanism in REGISTRY_IDS:
        assert plot.mechanism_family(mechanism) != plot.OTHER_FAMILY, f"{mechanism}: no family in plot.py"
        assert mechanism in plot.MECHANISM_COLORS, f"{mechanism}: no fixed colour in plot.py"
    assert plot.mechanism_family("something-new") == plot.OTHER_FAMILY
    # No id in two families.
    members = [m for family in plot.MECHANISM_FAMILIES.values() for m in family]
    assert len(members) == len(set(members))


def test_registry_list_matches_the_swift_sources():
    """The hard-coded list above is the registry: an id added in Swift without a family fails here."""
    import re

    if not MECHANISMS_DIR.is_dir():
        pytest.skip(f"no Swift sources at {MECHANISMS_DIR}")
    found = set()
    for path in [*MECHANISMS_DIR.glob("*.swift"), *SEGMENTS_DIR.glob("*.swift")]:
        text = path.read_text()
        # FanInMechanism refines Mechanism; a SegmentBackend is a ring mechanism's segment, with its id.
        if not re.search(r":\s*(?:\w+\s*,\s*)*(?:(?:FanIn)?Mechanism|SegmentBackend)\s*[,{]", text):
            continue
        # `public let id = "pipe"`, or a computed `var id: String { kind == .datagram ? "unix-dgram" : … }`
        for match in re.finditer(r"(?:let|var)\s+id\b[^\n]*", text):
            found.update(re.findall(r'"([^"\\]+)"', match.group(0)))
    assert found, "no mechanism ids found in the Swift sources"
    assert found == set(REGISTRY_IDS), (f"Swift has {sorted(found - set(REGISTRY_IDS))} not in REGISTRY_IDS, "
                                        f"REGISTRY_IDS has {sorted(set(REGISTRY_IDS) - found)} not in Swift")


def test_colours_are_fixed_per_mechanism_whatever_the_order():
    plot = plot_module()
    rows = [r for r in (plot.Row(run=0, line=i, mechanism=m, variant="v", copies=2, touch="read", produce="write",
                                 wait="block", mode="latency", size=64, placement="cross-cpu", status="ok", values={})
                        for i, m in enumerate(REGISTRY_IDS + ["brand-new"]))]
    forward = plot.name_series(rows)
    backward = plot.name_series(list(reversed(rows)))
    subset = plot.name_series([r for r in rows if r.mechanism in ("tcp", "brand-new", "memfd")])
    for naming in (backward, subset):
        for label, style in naming.styles.items():
            assert style.color == forward.styles[label].color, label
    # Within a family (one panel) every mechanism has its own colour.
    for family, members in plot.MECHANISM_FAMILIES.items():
        colours = [plot.mechanism_color(m) for m in members]
        assert len(set(colours)) == len(colours), family
    # Unknown ids: a colour from a hash that does not change between processes (unlike Python's hash()).
    other = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import plot; "
                            "print(plot.mechanism_color('brand-new'))", str(PLOT.parent)],
                           capture_output=True, text=True, env=dict(os.environ, PYTHONHASHSEED="12345"))
    assert other.stdout.strip() == plot.mechanism_color("brand-new")


def record_figures(monkeypatch, plot) -> list:
    """Replaces Plotter.save: records, per figure, each data panel's title, data artists, what they draw, y
    limits, x ticks and the figure's text, then closes it without writing."""
    figures = []

    def save(self, fig, name, title, description):
        panels = []
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>" or not ax.get_visible():
                continue
            texts = [t.get_text() for t in ax.texts]
            # What is drawn: every line's points and every bar's length.
            data = ([(tuple(line.get_xdata()), tuple(line.get_ydata())) for line in ax.lines]
                    + [patch.get_width() for patch in ax.patches if hasattr(patch, "get_width")])
            panels.append(dict(title=ax.get_title(loc="left") or ax.get_title(), ylim=ax.get_ylim(),
                               artists=len(ax.lines) + len(ax.patches) + len(ax.images) + len(ax.collections),
                               texts=texts, data=data, xticks=tuple(ax.get_xticks()), xlabel=ax.get_xlabel()))
        suptitle = fig._suptitle.get_text() if fig._suptitle else ""
        figures.append(dict(name=name, panels=panels, suptitle=suptitle, description=description))
        self.plt.close(fig)
        self.written.append((name, title, description))
        return b""

    monkeypatch.setattr(plot.Plotter, "save", save)
    return figures


def draw_all(plot, tmp_path, csvs, monkeypatch, *extra) -> list:
    figures = record_figures(monkeypatch, plot)
    assert plot.main([str(c) for c in csvs] + ["--out", str(tmp_path / "out"), *extra]) == 0
    return figures


def test_small_multiples_one_panel_per_family_shared_scale_no_empty_panel(tmp_path, monkeypatch):
    plot = plot_module()
    series = [("pipe", "write/read", 2), ("tcp", "nodelay", 2), ("shm-posix", "in-place/spin", 0),
              ("cma", "process_vm_readv/pipe", 1), ("mystery", "x", 2)]
    rows = [row(m, v, c, mode, size, placement) for m, v, c in series for mode in ("latency", "throughput")
            for size in SIZES for placement in ("cross-cpu", "same-cpu")
            if not (m == "tcp" and mode == "throughput") and not (mode == "throughput" and placement == "same-cpu")]
    results = write_csv(tmp_path / "results.csv", rows)
    figures = {f["name"]: f for f in draw_all(plot, tmp_path, [results], monkeypatch)}
    for name in ("latency-vs-size", "throughput-vs-size", "tail-latency"):
        panels = figures[name]["panels"]
        # No datagram family in the data: no panel for it; the unknown id gets "other".
        assert [p["title"] for p in panels] == ["byte streams", "shared memory", "kernel copy paths", "other"], name
        assert len({p["ylim"] for p in panels}) == 1, f"{name}: panels do not share the y scale"
    for figure in figures.values():
        for panel in figure["panels"]:
            assert panel["artists"] > 0 and "no data" not in panel["texts"], (figure["name"], panel["title"])
    # Throughput here runs at one placement only: the placement figure has the latency panel alone, and says so.
    placement = figures["placement"]
    assert [p["title"] for p in placement["panels"]] == ["latency (ping-pong), p50 — lower is better"]
    assert "no panel for throughput (measured at cross-cpu only)" in placement["description"]
    # The copies figure states the produce and touch policies.
    copies = figures["copies"]
    assert "produce write" in copies["suptitle"] and "touch read" in copies["suptitle"]
    assert "produce write" in copies["description"] and "touch read" in copies["description"]


def test_wait_plot_without_cpu_columns_has_no_empty_panel(tmp_path, monkeypatch):
    plot = plot_module()
    columns = COLUMNS + ["wait"]
    rows = [dict(row("pipe", "write/read", 2, "latency", size, placement, scale=f), wait=wait)
            for wait, f in (("block", 1), ("poll", 0.3)) for size in (16, 4096) for placement in ("cross-cpu", "same-cpu")]
    results = write_csv(tmp_path / "results.csv", rows, columns=columns)
    figures = {f["name"]: f for f in draw_all(plot, tmp_path, [results], monkeypatch)}
    assert [p["title"] for p in figures["wait"]["panels"]] == ["latency (ping-pong), p50 — lower is better"]
    # The size sweeps show one wait strategy (block), not both on top of each other.
    assert "wait block (others in the wait plot)" in figures["latency-vs-size"]["suptitle"]
    for figure in figures.values():
        for panel in figure["panels"]:
            assert panel["artists"] > 0 and "no data" not in panel["texts"], (figure["name"], panel["title"])


# ---------------------------------------------------------------------------------------------------------------
# Comparing runs: the rank-sum test, the verdicts, and compare.html


def swift_orderings_by_u(m, n):
    """RankSumTest.orderingsByU, line by line: the recurrence the Swift side uses."""
    if m <= 0 or n <= 0:
        return [1]
    counts = [[1] + [0] * (m * n) for _ in range(n + 1)]
    for i in range(1, m + 1):
        nxt = [[0] * (m * n + 1) for _ in range(n + 1)]
        nxt[0][0] = 1
        for j in range(1, n + 1):
            for u in range(0, i * j + 1):
                nxt[j][u] = (counts[j][u - j] if u >= j else 0) + nxt[j - 1][u]
        counts = nxt
    return counts[n]


def test_rank_sum_distribution_matches_the_swift_recurrence():
    plot = plot_module()
    for m in range(0, 9):
        for n in range(0, 9):
            assert list(plot.orderings_by_u(m, n)) == swift_orderings_by_u(m, n), (m, n)
    assert sum(plot.orderings_by_u(5, 5)) == 252 and sum(plot.orderings_by_u(10, 10)) == 184756


def test_rank_sum_known_answers():
    plot = plot_module()
    low, high = [1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0]
    # 5 against 5, fully separated: p = 2 / C(10, 5) = 2/252 < 0.01.
    assert plot.rank_sum_p_value(low, high) == pytest.approx(2 / 252)
    assert plot.rank_sum_smallest_p(5, 5) == pytest.approx(2 / 252)
    assert plot.rank_sum_smallest_p(3, 3) == pytest.approx(0.1)  # 2/20: can never reach 0.01
    assert plot.rank_sum_smallest_p(4, 4) == pytest.approx(2 / 70)
    # Identical samples (all tied): p = 1.
    assert plot.rank_sum_p_value([3.0] * 5, [3.0] * 5) == 1.0
    # One pair out of order (6 > 5): U = 1, two orderings as extreme on each side, p = 2·2/252.
    assert plot.rank_sum_p_value([1.0, 2.0, 3.0, 4.0, 6.0], [5.0, 7.0, 8.0, 9.0, 10.0]) == pytest.approx(4 / 252)
    # b = 2·a: estimate exactly 2; interval the extreme ratios (k = 1 at alpha 0.01 for 5 and 5).
    estimate, interval = plot.rank_sum_ratio(low, [2 * x for x in low], 0.01)
    assert estimate == pytest.approx(2.0) and interval == (pytest.approx(0.4), pytest.approx(10.0))
    assert plot.rank_sum_ratio([1.0, 2.0, 3.0], [2.0, 4.0, 6.0], 0.01)[1] is None  # 3 and 3: no interval


@pytest.mark.parametrize("mode, a, b, verdict, text", [
    ("latency", [100, 101, 102, 103, 104], [120, 121, 122, 123, 124], "slower", "slower +"),
    ("latency", [120, 121, 122, 123, 124], [100, 101, 102, 103, 104], "faster", "faster -"),
    ("throughput", [100, 101, 102, 103, 104], [120, 121, 122, 123, 124], "faster", "faster -"),
    ("throughput", [120, 121, 122, 123, 124], [100, 101, 102, 103, 104], "slower", "slower +"),
    ("latency", [100, 110, 102, 113, 104], [101, 111, 103, 112, 105], "no significant change", "~"),
    ("latency", [100, 101, 102], [200, 201, 202], "too few repetitions", "too few repetitions"),
])
def test_verdicts(mode, a, b, verdict, text):
    plot = plot_module()
    change = plot.judge_cell(mode, plot.Figures([float(x) for x in a], True), plot.Figures([float(x) for x in b], True),
                             0.01)
    assert change.verdict == verdict and change.verdict_text.startswith(text)
    if verdict == "too few repetitions":
        assert change.p_value is None and change.ratio == pytest.approx(2.0, rel=0.01)
    # Slowdown: time per message (latency) or per byte (1 / ratio, throughput).
    expected = (1 / change.ratio if mode == "throughput" else change.ratio) - 1
    assert change.slowdown_percent == pytest.approx(expected * 100)
    # Without per-repetition figures: the ratio of the two figures, not judged.
    old = plot.judge_cell(mode, plot.Figures([100.0], False), plot.Figures([150.0], False), 0.01)
    assert old.verdict == "not judged" and old.ratio == 1.5


SWIFT_TABLES = PLOT.parent.parent / "results" / "vm-xeon-2026-12-05" / "compare"


@pytest.mark.parametrize("baseline, candidate", [("a", "b"), ("a", "slowed"), ("a10", "b10"), ("a10", "slowed10")])
def test_same_verdicts_as_ipcbench_compare_on_the_reference_runs(baseline, candidate):
    """The committed `ipcbench compare` tables (X-vs-Y.txt): every ratio, interval, p and verdict agrees."""
    import re

    plot = plot_module()
    table_path = SWIFT_TABLES / f"{baseline}-vs-{candidate}.txt"
    if not table_path.is_file():
        pytest.skip(f"no {table_path}")
    runs = [plot.Run(index=i, path=str(SWIFT_TABLES / f"{name}.csv"), metadata=None,
                     rows=plot.read_csv(str(SWIFT_TABLES / f"{name}.csv"), i)) for i, name in enumerate((baseline, candidate))]
    comparison = plot.compare_runs(runs, 0.01)
    lines = table_path.read_text().splitlines()
    header = re.split(r"\s{2,}", lines[0].strip())
    expected = {}
    for line in lines[1:]:
        fields = re.split(r"\s{2,}", line.strip())
        if line.startswith(" ") or len(fields) != len(header):
            continue  # the regression list on stderr, interleaved with the table in these files
        d = dict(zip(header, fields))
        expected[(d["mechanism"], d["variant"], d["wait"], d["mode"], d["size"], d["placement"])] = d
    checked = 0
    for cell in comparison.cells:
        change = cell.changes[1]
        d = expected.get((cell.key[0], cell.key[1], cell.key[2], cell.key[3], plot.human_size(cell.key[4]), cell.key[5]))
        if d is None:
            continue
        interval = "" if change.ratio_low is None else f"{change.ratio_low:.3f}–{change.ratio_high:.3f}"
        assert (f"{change.ratio:.3f}", interval, f"{change.p_value:.3f}", change.verdict_text) == (
            d["B/A"], d["interval"], d["p"], d["verdict"]), cell.key
        checked += 1
    assert checked >= 180  # a few table lines are cut by the interleaved stderr
    summary = next(line for line in lines if "matching cells" in line)
    assert plot.verdict_summary(comparison, 1) == summary


def compare_columns():
    return COLUMNS + ["wait", "produce", "headline_per_repetition", "steal_percent", "floor_rtt_before_ns"]


def rep_row(mechanism, mode, size, figures, status="ok", placement="cross-cpu"):
    r = row(mechanism, "v1", 2, mode, size, placement, status=status)
    r.update(wait="block", produce="write", headline_per_repetition=" ".join(f"{x:g}" for x in figures),
             steal_percent="0.0", floor_rtt_before_ns="")
    if status == "ok" and mode == "latency":
        r["rtt_half_p50_ns"] = f"{sorted(figures)[len(figures) // 2]:g}"
    if status != "ok":
        r["headline_per_repetition"] = ""
    return r


def test_compare_page(tmp_path):
    fast, slow = [1000, 1010, 1020, 1030, 1040], [1200, 1210, 1220, 1230, 1240]
    runs = {
        "a": [rep_row("pipe", "latency", 64, fast), rep_row("pipe", "latency", 4096, fast),
              rep_row("tcp", "latency", 64, fast[:3]), rep_row("udp", "latency", 64, fast),
              rep_row("fifo", "latency", 64, fast), rep_row("sysv-msg", "latency", 1 << 20, [], status="unavailable: too big")],
        "b": [rep_row("pipe", "latency", 64, slow), rep_row("pipe", "latency", 4096, fast),
              rep_row("tcp", "latency", 64, slow[:3]), rep_row("udp", "latency", 64, fast),
              rep_row("fifo", "latency", 64, [], status="failed: worker exited with status 1"),
              rep_row("sysv-msg", "latency", 1 << 20, [], status="unavailable: too big")],
        "c": [rep_row("pipe", "latency", 64, fast), rep_row("pipe", "latency", 4096, slow),
              rep_row("tcp", "latency", 64, fast[:3]), rep_row("fifo", "latency", 64, fast),
              rep_row("sysv-msg", "latency", 1 << 20, [], status="unavailable: too big")],
    }
    paths = []
    for name, rows in runs.items():
        path = write_csv(tmp_path / f"{name}.csv", rows, columns=compare_columns())
        write_metadata(path, f"host-{name}", f"2026-01-0{len(paths) + 1}T10:00:00Z")
        paths.append(path)
    meta_path = tmp_path / "b.metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["host"]["kernel"] = "Linux <script>alert(1)</script> & more"
    meta["configuration"] = {"repetitions": 5, "repetition_order": "rounds"}
    meta["tool"] = {"version": "0.1.0", "commit": "0123456789abcdef"}
    meta_path.write_text(json.dumps(meta))
    out = tmp_path / "out"
    result = run_plot(*paths, "--out", out)
    assert result.returncode == 0, result.stderr
    page_path = out / "compare.html"
    assert str(page_path) in result.stdout
    page = page_path.read_text()
    assert_png(out / "compare-heatmap.png")
    assert 'src="data:image/png;base64,' in page  # the heat map travels with the page
    # Metadata: escaped, never markup; commit, repetitions and their order shown.
    assert "<script>" not in page and "Linux &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "0123456789abcdef" in page and "rounds" in page and "host-c" in page
    cells = page[page.index("<h2>Cells in every run"):page.index('<h2 id="missing">')]
    # pipe 64 B: B's 5 all above A's 5: significant (p = 2/252 = 0.008); the ratio is the median of the 25
    # ratios of one repetition each (1220/1020 = 1.196), its interval the extreme ones (1200/1040, 1240/1000).
    # C is A again.
    pipe64 = next(line for line in cells.splitlines() if "<td>pipe</td>" in line and "<td>64 B</td>" in line)
    assert ">1.196<" in pipe64 and ">1.154–1.240<" in pipe64 and ">0.008<" in pipe64 and "slower +19.6%" in pipe64
    assert pipe64.count('class="slower sig"') == 1 and "<td>~</td>" in pipe64
    tcp = next(line for line in cells.splitlines() if "<td>tcp</td>" in line)
    assert tcp.count("too few repetitions") == 2 and "<td>3/3</td>" not in tcp and ">3/3<" in tcp
    # Missing from some run: listed with the reason, never dropped.
    missing = page[page.index('<h2 id="missing">'):]
    udp = next(line for line in missing.splitlines() if "<td>udp</td>" in line)
    assert udp.count("<td>ok</td>") == 2 and "not in this run" in udp
    fifo = next(line for line in missing.splitlines() if "<td>fifo</td>" in line)
    assert "failed: worker exited with status 1" in fifo
    assert "1 cell(s) with no ok figure in any run" in missing and "unavailable: too big" in missing
    assert "2 matching cells" not in page and "3 matching cells: 1 slower, 1 no significant change, 1 too few" in page
    # The index links to it; a later single-CSV run removes it with the other stale plots.
    assert 'href="compare.html"' in (out / "index.html").read_text()
    result = run_plot(paths[0], "--out", out)
    assert result.returncode == 0, result.stderr
    assert not page_path.exists() and not (out / "compare-heatmap.png").exists()
    assert 'href="compare.html"' not in (out / "index.html").read_text()


def test_compare_rejects_a_malformed_per_repetition_figure(tmp_path):
    good = write_csv(tmp_path / "a.csv", [rep_row("pipe", "latency", 64, [1000, 1001, 1002])], columns=compare_columns())
    bad_row = rep_row("pipe", "latency", 64, [1000, 1001, 1002])
    bad_row["headline_per_repetition"] = "1000 -5 1002"
    bad = write_csv(tmp_path / "b.csv", [bad_row], columns=compare_columns())
    assert_clean_error(run_plot(good, bad, "--out", tmp_path / "out"), "headline_per_repetition")
    assert not (tmp_path / "out" / "compare.html").exists()
    assert_clean_error(run_plot(good, good, "--alpha", "0.7"), "--alpha")


# ---------------------------------------------------------------------------------------------------------------
# Several pairs at once (ipcbench run --pairs): the scaling plot; every other plot shows one pair's rows only

PAIRS_COLUMNS = COLUMNS + ["pairs", "pair_sharing", "pair_cpus", "pair_spread_percent"]
PAIRS_SERIES = [("pipe", "write/read", 2), ("unix-stream", "write/read", 2), ("shm-posix", "in-place/spin", 0)]


def pairs_row(mechanism, variant, copies, mode, size, pairs, cpus=4) -> dict:
    """A row of `pairs` pairs at once on `cpus` CPUs: aggregate throughput grows until the workers fill the
    CPUs, latency grows once pairs share CPUs. Far from the one-pair figures, so a mix-up shows."""
    r = row(mechanism, variant, copies, mode, size, "cross-cpu")
    if pairs > 1:
        if mode == "throughput":
            factor = min(pairs, cpus / 2) * 0.9
            for column in ("bytes_per_s", "msgs_per_s"):
                r[column] = f"{float(r[column]) * factor:.1f}"
        else:
            factor = 1.2 * pairs * (40 if 2 * pairs > cpus else 1)
            for column in [f"{kind}_{s}_ns" for kind in ("one_way", "rtt_half") for s in STATS]:
                r[column] = f"{float(r[column]) * factor:.1f}"
    r.update(pairs=str(pairs), pair_sharing="cpu" if 2 * pairs > cpus else "none",
             pair_cpus=" ".join(f"{(2 * i) % cpus}>{(2 * i + 1) % cpus}" for i in range(pairs)),
             pair_spread_percent="" if pairs == 1 else f"{2.5 * pairs:.1f}")
    return r


def pairs_rows(pair_counts=(1, 2, 4), sizes=(64, 4096)) -> list[dict]:
    return [pairs_row(m, v, c, mode, size, pairs) for m, v, c in PAIRS_SERIES for mode in ("latency", "throughput")
            for size in sizes for pairs in pair_counts]


def write_pairs_metadata(csv_path: Path, allowed_cpus: list[int]) -> None:
    write_metadata(csv_path, "bench-pairs", "2026-03-01T09:00:00Z")
    path = csv_path.parent / ("metadata.json" if csv_path.name == "results.csv" else csv_path.name[:-4] + ".metadata.json")
    meta = json.loads(path.read_text())
    meta["host"].pop("allowed_cp_us")
    meta["host"]["allowed_cpus"] = allowed_cpus  # as ipcbench writes it
    path.write_text(json.dumps(meta))


def has_line(panel: dict, xs: tuple, ys: list) -> bool:
    return any(isinstance(d, tuple) and d[0] == xs and list(d[1]) == pytest.approx(ys) for d in panel["data"])


def test_scaling_plot_from_several_pair_counts(tmp_path, monkeypatch):
    results = write_csv(tmp_path / "results.csv", pairs_rows() + [
        pairs_row("pipe", "write/read", 2, "latency", 4096, 8) | {"status": "failed: worker exited with status 1"}],
        columns=PAIRS_COLUMNS)
    write_pairs_metadata(results, [0, 1, 2, 3])
    result = run_plot(results)
    assert result.returncode == 0, result.stderr
    plots = tmp_path / "plots"
    assert_png(plots / "scaling.png")
    assert (plots / "scaling.svg").stat().st_size > 1000
    assert str(plots / "scaling.png") in result.stdout
    index = (plots / "index.html").read_text()
    assert 'src="scaling.png" alt="Scaling with pairs at 4 KiB"' in index and "against the number of producer/consumer" in index
    assert "<th>pairs</th>" in index and "<td>8</td>" in index  # the failed cell: which pair count failed
    assert "ran several pairs or clients at once" in result.stderr
    # What the figure shows: a throughput and a latency panel over pairs 1, 2, 4 at the size closest to 4 KiB,
    # one line per series (latency: p99 and p50), the 4 allowed CPUs at 2 pairs, hollow markers at 4 pairs.
    figure = next(f for f in draw_all(plot_module(), tmp_path, [results], monkeypatch) if f["name"] == "scaling")
    throughput, latency = figure["panels"]
    assert throughput["title"].startswith("aggregate throughput vs pairs")
    assert latency["title"].startswith("p99 RTT/2 vs pairs")
    assert "4 KiB" in figure["suptitle"] and "bench-pairs" in figure["suptitle"] and "2026-03-01" in figure["suptitle"]
    for panel in (throughput, latency):
        assert panel["xticks"] == (1, 2, 4)
        assert "2 × pairs = 4 CPUs" in panel["texts"]
        # The hollow markers: one extra marker-only line per series, at 4 pairs (8 workers on 4 CPUs).
        hollow = [xy for xy in panel["data"] if isinstance(xy, tuple) and xy[0] == (4,)]
        assert len(hollow) == len(PAIRS_SERIES)
    # Every series has all three pair counts; the throughput one is the aggregate at 4 KiB.
    pipe = pairs_rows(sizes=(4096,))
    expected = [float(r["bytes_per_s"]) / 1e9 for r in pipe if r["mechanism"] == "pipe" and r["mode"] == "throughput"]
    assert has_line(throughput, (1, 2, 4), expected)
    p99 = [float(r["rtt_half_p99_ns"]) / 1e3 for r in pipe if r["mechanism"] == "pipe" and r["mode"] == "latency"]
    p50 = [float(r["rtt_half_p50_ns"]) / 1e3 for r in pipe if r["mechanism"] == "pipe" and r["mode"] == "latency"]
    assert has_line(latency, (1, 2, 4), p99) and has_line(latency, (1, 2, 4), p50)
    # --size picks the size as for the other single-size plots.
    figure = next(f for f in draw_all(plot_module(), tmp_path, [results], monkeypatch, "--size", "64")
                  if f["name"] == "scaling")
    assert "at 64 B" in figure["suptitle"]


def test_scaling_plot_marks_the_cpus_at_one_pair_per_cpu_for_same_cpu_pairs(tmp_path, monkeypatch):
    """Same-CPU pairs fill the CPUs one pair per CPU: the line sits at pairs = CPUs, not at half of it."""
    rows = [r | {"placement": "same-cpu"} for r in pairs_rows()]
    results = write_csv(tmp_path / "results.csv", rows, columns=PAIRS_COLUMNS)
    write_pairs_metadata(results, [0, 1, 2, 3])
    figure = next(f for f in draw_all(plot_module(), tmp_path, [results], monkeypatch) if f["name"] == "scaling")
    for panel in figure["panels"]:
        assert "pairs = 4 CPUs" in panel["texts"] and "2 × pairs = 4 CPUs" not in panel["texts"]


def test_rows_of_several_readers_stay_out_of_the_other_plots(tmp_path, monkeypatch):
    """--readers rows (what all readers received together) are not one consumer's figures: they appear in
    scaling-readers alone."""
    plot = plot_module()
    base = pairs_rows(pair_counts=(1,), sizes=SIZES)
    single = write_csv(tmp_path / "single.csv", base, columns=PAIRS_COLUMNS + ["readers"])
    fanned = [r | {"readers": "3", "bytes_per_s": str(float(r["bytes_per_s"]) * 3) if r["bytes_per_s"] else ""} for r in base]
    mixed = write_csv(tmp_path / "mixed.csv", base + fanned, columns=PAIRS_COLUMNS + ["readers"])
    figures = {}
    for path in (single, mixed):
        figures[path.name] = {f["name"]: f for f in draw_all(plot, tmp_path, [path], monkeypatch)}
    assert figures["mixed.csv"].keys() - figures["single.csv"].keys() == {"scaling-readers"}
    for name in figures["single.csv"]:
        assert figures["single.csv"][name]["panels"] == figures["mixed.csv"][name]["panels"], name


READERS_SERIES = [("unix-stream", "write/read", 2), ("shm-posix", "in-place/spin", 0)]


def readers_row(mechanism, variant, copies, size, readers, placement="cross-cpu") -> dict:
    """Streaming to `readers` readers on 2 CPUs: a socket per reader delivers about the same bytes in all
    (the producer writes each message once per reader), the broadcast ring more as readers grow."""
    r = row(mechanism, variant, copies, "throughput", size, placement)
    factor = {"unix-stream": 1.0, "shm-posix": 1.0 + 0.5 * (readers - 1)}[mechanism]
    for column in ("bytes_per_s", "msgs_per_s"):
        r[column] = f"{float(r[column]) * factor:.1f}"
    sharing = readers + 1 > 2 and placement != "same-cpu"
    r.update(pairs="1", clients="1", readers=str(readers), pair_sharing="cpu" if sharing else "none",
             pair_cpus=" ".join(f"0>{0 if placement == 'same-cpu' else 1}" for _ in range(readers)),
             pair_spread_percent="" if readers == 1 else f"{2.0 * readers:.1f}")
    return r


def test_scaling_readers_plot(tmp_path, monkeypatch):
    rows = [readers_row(m, v, c, size, n) for m, v, c in READERS_SERIES for size in (64, 65536) for n in (1, 2, 4)]
    results = write_csv(tmp_path / "results.csv", rows, columns=CLIENTS_COLUMNS + ["readers"])
    write_pairs_metadata(results, [0, 1])
    result = run_plot(results)
    assert result.returncode == 0, result.stderr
    plots = tmp_path / "plots"
    assert_png(plots / "scaling-readers.png")
    assert not (plots / "scaling.png").exists() and not (plots / "scaling-clients.png").exists()
    index = (plots / "index.html").read_text()
    assert 'alt="Fan-out: readers per producer at 64 KiB"' in index
    figure = next(f for f in draw_all(plot_module(), tmp_path, [results], monkeypatch) if f["name"] == "scaling-readers")
    delivered, published = figure["panels"]
    assert delivered["title"] == "delivered throughput vs readers (all readers together)"
    assert published["title"] == "published messages/s vs readers (each reached every reader)"
    assert "Fan-out" in figure["suptitle"] and "64 KiB" in figure["suptitle"]
    for panel in (delivered, published):
        assert panel["xticks"] == (1, 2, 4) and panel["xlabel"] == "readers of one producer"
        assert "readers + producer = 2 CPUs" in panel["texts"]
        hollow = [xy for xy in panel["data"] if isinstance(xy, tuple) and xy[0] == (2, 4)]
        assert len(hollow) == len(READERS_SERIES)
    for mechanism, *_ in READERS_SERIES:
        mine = [r for r in rows if r["mechanism"] == mechanism and r["message_bytes"] == "65536"]
        assert has_line(delivered, (1, 2, 4), [float(r["bytes_per_s"]) / 1e9 for r in mine])
        # Published: what all readers received, divided by the readers.
        assert has_line(published, (1, 2, 4), [float(r["msgs_per_s"]) / int(r["readers"]) / 1e3 for r in mine])


def test_scaling_plot_one_panel_and_no_cpu_line_without_metadata(tmp_path, monkeypatch):
    rows = [r for r in pairs_rows() if r["mode"] == "throughput"]
    results = write_csv(tmp_path / "results.csv", rows, columns=PAIRS_COLUMNS)
    figure = next(f for f in draw_all(plot_module(), tmp_path, [results], monkeypatch) if f["name"] == "scaling")
    assert [p["title"] for p in figure["panels"]] == ["aggregate throughput vs pairs (sum over the pairs)"]
    assert not [t for t in figure["panels"][0]["texts"] if "CPUs" in t]


def test_rows_of_several_pairs_stay_out_of_the_other_plots(tmp_path, monkeypatch):
    """The one-pair rows give the same figures whether or not rows of several pairs sit beside them."""
    plot = plot_module()
    single = write_csv(tmp_path / "single.csv", pairs_rows(pair_counts=(1,), sizes=SIZES), columns=PAIRS_COLUMNS)
    mixed = write_csv(tmp_path / "mixed.csv", pairs_rows(pair_counts=(1, 2, 4), sizes=SIZES), columns=PAIRS_COLUMNS)
    for path in (single, mixed):
        write_pairs_metadata(path, [0, 1, 2, 3])
    alone = {f["name"]: f for f in draw_all(plot, tmp_path, [single], monkeypatch)}
    beside = {f["name"]: f for f in draw_all(plot, tmp_path, [mixed], monkeypatch)}
    assert "scaling" not in alone and "scaling" in beside
    assert set(beside) - {"scaling"} == set(alone) >= {"latency-vs-size", "throughput-vs-size", "tail-latency"}
    for name in alone:
        assert beside[name]["panels"] == alone[name]["panels"], name
        assert beside[name]["description"] == alone[name]["description"], name
    # The rows the size sweep selects: one pair each.
    rows = plot.read_csv(str(mixed), 0)
    plotter = plot.Plotter([plot.Run(0, str(mixed), None, rows)], rows, plot.parse_arguments([str(mixed)]), None, [])
    selected = [r for members in plotter.series_rows("latency", plotter.placement).values() for r in members]
    assert selected and {r.pairs for r in selected} == {1}
    assert len(selected) == sum(1 for r in rows if r.mode == "latency" and r.pairs == 1)


def test_old_csv_gives_the_same_plots_and_no_scaling(tmp_path, monkeypatch):
    plot = plot_module()
    old = write_csv(tmp_path / "results.csv", synthetic_rows())
    write_metadata(old, "bench-a", "2026-01-01T10:00:00Z")
    result = run_plot(old)
    assert result.returncode == 0, result.stderr
    drawn = {Path(line).name for line in result.stdout.splitlines() if line.endswith(".png")}
    assert drawn == {f"{name}.png" for name in ("latency-vs-size", "throughput-vs-size", "tail-latency", "copies",
                                                "placement")}
    assert not (tmp_path / "plots" / "scaling.png").exists()
    assert "scaling" not in result.stderr and "pairs" not in (tmp_path / "plots" / "index.html").read_text()
    rows = plot.read_csv(str(old), 0)
    assert {(r.pairs, r.pair_sharing, r.pair_cpus) for r in rows} == {(1, "none", "")}
    # The same rows with the new columns, all one pair: the same figures.
    explicit = write_csv(tmp_path / "explicit.csv", [dict(r, pairs="1", pair_sharing="none") for r in synthetic_rows()],
                         columns=PAIRS_COLUMNS)
    write_metadata(explicit, "bench-a", "2026-01-01T10:00:00Z")
    before = draw_all(plot, tmp_path, [old], monkeypatch)
    after = draw_all(plot, tmp_path, [explicit], monkeypatch)
    assert before == after


def test_only_rows_of_several_pairs_gives_the_scaling_plot_alone(tmp_path):
    results = write_csv(tmp_path / "results.csv", pairs_rows(pair_counts=(2, 4)), columns=PAIRS_COLUMNS)
    result = run_plot(results)
    assert result.returncode == 0, result.stderr
    assert_png(tmp_path / "plots" / "scaling.png")
    assert [Path(line).name for line in result.stdout.splitlines() if line.endswith(".png")] == ["scaling.png"]
    assert "latency-vs-size: skipped" in result.stderr and "and there are none" in result.stderr
    # One pair count only: nothing to scale over, and the note says so.
    results = write_csv(tmp_path / "four.csv", pairs_rows(pair_counts=(4,)), columns=PAIRS_COLUMNS)
    result = run_plot(results)
    assert result.returncode == 0, result.stderr
    assert "scaling: skipped — no series measured at two pair counts or more" in result.stderr
    assert not [line for line in result.stdout.splitlines() if line.endswith(".png")]


@pytest.mark.parametrize("value", ["0", "1.5", "-2", "two"])
def test_bad_pairs_value(tmp_path, value):
    results = write_csv(tmp_path / "results.csv", [pairs_row("pipe", "write/read", 2, "latency", 64, 1) | {"pairs": value}],
                        columns=PAIRS_COLUMNS)
    assert_clean_error(run_plot(results), "'pairs'")


def test_compare_key_separates_pair_counts(tmp_path):
    plot = plot_module()
    fast, slow = [1000, 1010, 1020, 1030, 1040], [1200, 1210, 1220, 1230, 1240]
    columns = compare_columns() + ["pairs", "pair_sharing"]

    def runs_rows(one, two):
        return [rep_row("pipe", "latency", 64, one) | {"pairs": "1"}, rep_row("pipe", "latency", 64, two) | {"pairs": "2"}]

    a = write_csv(tmp_path / "a.csv", runs_rows(fast, slow), columns=columns)
    b = write_csv(tmp_path / "b.csv", runs_rows(fast, slow), columns=columns)
    rows = plot.read_csv(str(a), 0)
    assert rows[0].compare_key() != rows[1].compare_key() and rows[0].cell_key() != rows[1].cell_key()
    assert rows[0].compare_key()[plot.PAIRS_INDEX] == 1 and rows[1].compare_key()[plot.PAIRS_INDEX] == 2
    runs = [plot.Run(i, str(p), None, plot.read_csv(str(p), i)) for i, p in enumerate((a, b))]
    comparison = plot.compare_runs(runs, 0.01)
    # One pair against one pair, two against two: never one pair's figure against the aggregate of two.
    assert len(comparison.cells) == 2 and comparison.duplicates == 0
    assert all(cell.changes[1].verdict == "no significant change" for cell in comparison.cells)
    out = tmp_path / "out"
    result = run_plot(a, b, "--out", out)
    assert result.returncode == 0, result.stderr
    page = (out / "compare.html").read_text()
    assert "<th>pairs</th>" in page and "produce, paced rate/s, pairs." in page
    cells = page[page.index("<h2>Cells in every run"):page.index('<h2 id="missing">')]
    assert cells.count("<td>pipe</td>") == 2 and "<td>1</td>" in cells and "<td>2</td>" in cells
    # Runs without the column: no pairs column, the page as before.
    old_a = write_csv(tmp_path / "old-a.csv", [rep_row("pipe", "latency", 64, fast)], columns=compare_columns())
    old_b = write_csv(tmp_path / "old-b.csv", [rep_row("pipe", "latency", 64, slow)], columns=compare_columns())
    result = run_plot(old_a, old_b, "--out", tmp_path / "old-out")
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "old-out" / "compare.html").read_text()
    assert "pairs" not in page and "produce, paced rate/s.</p>" in page


# ---------------------------------------------------------------------------------------------------------------
# One server serving several clients (ipcbench run --clients): the scaling-clients plot; every other plot shows
# the rows of one pair and one client only

CLIENTS_COLUMNS = COLUMNS + ["pairs", "clients", "pair_sharing", "pair_cpus", "pair_spread_percent"]
CLIENTS_SERIES = [("unix-stream", "write/read", 2), ("posix-mq", "send/receive", 2)]


def clients_row(mechanism, variant, copies, mode, size, clients, cpus=2, placement="cross-cpu") -> dict:
    """A row of one server serving `clients` clients on `cpus` CPUs: the server's total throughput grows a
    little until the clients and the server fill the CPUs, latency grows with the clients, steeply once they
    share CPUs. Far from the one-client figures, so a mix-up shows."""
    r = row(mechanism, variant, copies, mode, size, placement)
    sharing = clients + 1 > cpus and placement != "same-cpu"
    if clients > 1:
        if mode == "throughput":
            factor = 1 + 0.6 * (min(clients, cpus - 1) - 1) + 0.1 * clients
            for column in ("bytes_per_s", "msgs_per_s"):
                r[column] = f"{float(r[column]) * factor:.1f}"
        else:
            factor = 1.5 * clients * (8 if sharing else 1)
            for column in [f"{kind}_{s}_ns" for kind in ("one_way", "rtt_half") for s in STATS]:
                r[column] = f"{float(r[column]) * factor:.1f}"
    server = 0 if placement == "same-cpu" else 1
    r.update(pairs="1", clients=str(clients), pair_sharing="cpu" if sharing else "none",
             pair_cpus=" ".join(f"{0 if placement == 'same-cpu' else (0 if i == 0 else (i + 1) % cpus)}>{server}"
                                for i in range(clients)),
             pair_spread_percent="" if clients == 1 else f"{3.0 * clients:.1f}")
    return r


def clients_rows(client_counts=(1, 2, 4), sizes=(64, 4096), cpus=2, placement="cross-cpu") -> list[dict]:
    return [clients_row(m, v, c, mode, size, clients, cpus, placement) for m, v, c in CLIENTS_SERIES
            for mode in ("latency", "throughput") for size in sizes for clients in client_counts]


def test_scaling_clients_plot_from_several_client_counts(tmp_path, monkeypatch):
    results = write_csv(tmp_path / "results.csv", clients_rows() + [
        clients_row("posix-mq", "send/receive", 2, "latency", 4096, 8) | {"status": "failed: worker exited with status 1"}],
        columns=CLIENTS_COLUMNS)
    write_pairs_metadata(results, [0, 1])
    result = run_plot(results)
    assert result.returncode == 0, result.stderr
    plots = tmp_path / "plots"
    assert_png(plots / "scaling-clients.png")
    assert (plots / "scaling-clients.svg").stat().st_size > 1000
    assert not (plots / "scaling.png").exists()  # no pair sweep: no pairs figure, and no note about one
    assert str(plots / "scaling-clients.png") in result.stdout and "scaling.png" not in result.stdout
    assert "scaling: skipped" not in result.stderr and "ran several pairs or clients at once" in result.stderr
    index = (plots / "index.html").read_text()
    assert 'src="scaling-clients.png" alt="Fan-in: clients per server at 4 KiB"' in index
    assert "clients (producers) one server (consumer) serves at once" in index
    assert "<th>clients</th>" in index and "<td>8</td>" in index and "<th>pairs</th>" not in index
    # What the figure shows: a throughput and a latency panel over clients 1, 2, 4 at the size closest to 4 KiB,
    # one line per series (latency: p99 and p50), the 2 allowed CPUs at 1 client (+ the server), hollow markers
    # at 2 and 4 clients (3 and 5 workers on 2 CPUs).
    figures = draw_all(plot_module(), tmp_path, [results], monkeypatch)
    assert "scaling" not in {f["name"] for f in figures}
    figure = next(f for f in figures if f["name"] == "scaling-clients")
    throughput, latency = figure["panels"]
    assert throughput["title"] == "server throughput vs clients (sum over the clients)"
    assert latency["title"] == "p99 RTT/2 vs clients (over every client's messages)"
    assert "4 KiB" in figure["suptitle"] and "bench-pairs" in figure["suptitle"] and "Fan-in" in figure["suptitle"]
    for panel in (throughput, latency):
        assert panel["xticks"] == (1, 2, 4) and panel["xlabel"] == "clients served by one server"
        assert "clients + server = 2 CPUs" in panel["texts"]
        hollow = [xy for xy in panel["data"] if isinstance(xy, tuple) and xy[0] == (2, 4)]
        assert len(hollow) == len(CLIENTS_SERIES)  # one marker-only line per series (the p50 line has no markers)
    rows = clients_rows(sizes=(4096,))
    for mechanism, *_ in CLIENTS_SERIES:
        mine = [r for r in rows if r["mechanism"] == mechanism]
        assert has_line(throughput, (1, 2, 4), [float(r["bytes_per_s"]) / 1e9 for r in mine if r["mode"] == "throughput"])
        for stat in ("p99", "p50"):
            assert has_line(latency, (1, 2, 4),
                            [float(r[f"rtt_half_{stat}_ns"]) / 1e3 for r in mine if r["mode"] == "latency"])
    # --size picks the size as for the other single-size plots.
    figure = next(f for f in draw_all(plot_module(), tmp_path, [results], monkeypatch, "--size", "64")
                  if f["name"] == "scaling-clients")
    assert "at 64 B" in figure["suptitle"]


def test_scaling_clients_cpu_line_outside_the_counts_and_for_same_cpu(tmp_path, monkeypatch):
    # 16 CPUs: clients + server fill them at 15 clients, beyond 2 × 4: no line, a note instead.
    results = write_csv(tmp_path / "results.csv", clients_rows(cpus=16), columns=CLIENTS_COLUMNS)
    write_pairs_metadata(results, list(range(16)))
    plot = plot_module()
    figure = next(f for f in draw_all(plot, tmp_path, [results], monkeypatch) if f["name"] == "scaling-clients")
    assert not [t for p in figure["panels"] for t in p["texts"] if "CPUs" in t]
    # Same-cpu: every client on the server's CPU, so they never fill the others: no line.
    results = write_csv(tmp_path / "same.csv", clients_rows(placement="same-cpu"), columns=CLIENTS_COLUMNS)
    write_pairs_metadata(results, [0, 1])
    figure = next(f for f in draw_all(plot, tmp_path, [results], monkeypatch) if f["name"] == "scaling-clients")
    assert not [t for p in figure["panels"] for t in p["texts"] if "CPUs" in t]
    assert "placement same-cpu" in figure["suptitle"]


def test_pair_and_client_sweeps_give_both_scaling_figures(tmp_path, monkeypatch):
    """unix-stream is swept over pairs and over clients: its one-pair one-client row is the point at 1 of both;
    posix-mq over clients only. The pairs figure is the one a CSV without the client rows gives."""
    plot = plot_module()
    pairs_only = [r | {"clients": "1"} for r in pairs_rows()]
    posix_mq = [r for r in clients_rows(client_counts=(1,), cpus=4) if r["mechanism"] == "posix-mq"]
    fan_in = [r for r in clients_rows(client_counts=(2, 4), cpus=4)]
    # posix-mq's one-client rows are in both: they are ordinary one-pair rows for every other plot.
    alone = write_csv(tmp_path / "pairs.csv", pairs_only + posix_mq, columns=CLIENTS_COLUMNS)
    both = write_csv(tmp_path / "both.csv", pairs_only + posix_mq + fan_in, columns=CLIENTS_COLUMNS)
    for path in (alone, both):
        write_pairs_metadata(path, [0, 1, 2, 3])
    result = run_plot(both)
    assert result.returncode == 0, result.stderr
    assert_png(tmp_path / "both.plots" / "scaling.png")
    assert_png(tmp_path / "both.plots" / "scaling-clients.png")
    before = {f["name"]: f for f in draw_all(plot, tmp_path, [alone], monkeypatch)}
    after = {f["name"]: f for f in draw_all(plot, tmp_path, [both], monkeypatch)}
    assert "scaling-clients" not in before and set(after) == set(before) | {"scaling-clients"}
    for name in before:  # the client rows change no other figure, the pairs one included
        assert after[name]["panels"] == before[name]["panels"], name
        assert after[name]["description"] == before[name]["description"], name
    figure = after["scaling-clients"]
    throughput, latency = figure["panels"]
    assert throughput["xticks"] == (1, 2, 4) and "clients + server = 4 CPUs" in throughput["texts"]
    assert "2 × pairs = 4 CPUs" in after["scaling"]["panels"][0]["texts"]
    lines = [d for d in throughput["data"] if isinstance(d, tuple) and d[0] == (1, 2, 4)]
    assert len(lines) == len(CLIENTS_SERIES)  # unix-stream and posix-mq; no pipe, no shm
    one = next(r for r in pairs_only if r["mechanism"] == "unix-stream" and r["mode"] == "throughput"
               and r["message_bytes"] == "4096" and r["pairs"] == "1")
    mine = [one] + [r for r in fan_in if r["mechanism"] == "unix-stream" and r["mode"] == "throughput"
                    and r["message_bytes"] == "4096"]
    assert has_line(throughput, (1, 2, 4), [float(r["bytes_per_s"]) / 1e9 for r in mine])


def test_rows_of_several_clients_stay_out_of_the_other_plots(tmp_path, monkeypatch):
    """The one-client rows give the same figures whether or not rows of several clients sit beside them."""
    plot = plot_module()
    single = write_csv(tmp_path / "single.csv", clients_rows(client_counts=(1,), sizes=SIZES), columns=CLIENTS_COLUMNS)
    mixed = write_csv(tmp_path / "mixed.csv", clients_rows(client_counts=(1, 2, 4), sizes=SIZES), columns=CLIENTS_COLUMNS)
    for path in (single, mixed):
        write_pairs_metadata(path, [0, 1])
    alone = {f["name"]: f for f in draw_all(plot, tmp_path, [single], monkeypatch)}
    beside = {f["name"]: f for f in draw_all(plot, tmp_path, [mixed], monkeypatch)}
    assert "scaling-clients" not in alone and set(beside) - {"scaling-clients"} == set(alone)
    assert set(alone) >= {"latency-vs-size", "throughput-vs-size", "tail-latency"} and "scaling" not in beside
    for name in alone:
        assert beside[name]["panels"] == alone[name]["panels"], name
        assert beside[name]["description"] == alone[name]["description"], name
    rows = plot.read_csv(str(mixed), 0)
    plotter = plot.Plotter([plot.Run(0, str(mixed), None, rows)], rows, plot.parse_arguments([str(mixed)]), None, [])
    assert {r.clients for r in plotter.ok} == {1} and {r.clients for r in plotter.all_ok} == {1, 2, 4}
    selected = [r for members in plotter.series_rows("throughput", plotter.placement).values() for r in members]
    assert selected and {r.clients for r in selected} == {1}
    # Only rows of several clients: the scaling-clients plot alone; one client count only: skipped, with a note.
    results = write_csv(tmp_path / "results.csv", clients_rows(client_counts=(2, 4)), columns=CLIENTS_COLUMNS)
    result = run_plot(results)
    assert result.returncode == 0, result.stderr
    assert [Path(line).name for line in result.stdout.splitlines() if line.endswith(".png")] == ["scaling-clients.png"]
    assert "and there are none" in result.stderr
    results = write_csv(tmp_path / "four.csv", clients_rows(client_counts=(4,)), columns=CLIENTS_COLUMNS)
    result = run_plot(results)
    assert result.returncode == 0, result.stderr
    assert "scaling-clients: skipped — no series measured at two client counts or more" in result.stderr
    assert "scaling: skipped" not in result.stderr


@pytest.mark.parametrize("value", ["0", "1.5", "-2", "two"])
def test_bad_clients_value(tmp_path, value):
    results = write_csv(tmp_path / "results.csv",
                        [clients_row("posix-mq", "send/receive", 2, "latency", 64, 1) | {"clients": value}],
                        columns=CLIENTS_COLUMNS)
    assert_clean_error(run_plot(results), "'clients'")


def test_missing_or_empty_clients_is_one(tmp_path, monkeypatch):
    """Old CSVs (no clients column, or an empty field) read as one client and plot as before."""
    plot = plot_module()
    old = write_csv(tmp_path / "old.csv", pairs_rows(), columns=PAIRS_COLUMNS)
    empty = write_csv(tmp_path / "empty.csv", [r | {"clients": ""} for r in pairs_rows()], columns=CLIENTS_COLUMNS)
    explicit = write_csv(tmp_path / "explicit.csv", [r | {"clients": "1"} for r in pairs_rows()], columns=CLIENTS_COLUMNS)
    for path in (old, empty, explicit):
        write_pairs_metadata(path, [0, 1, 2, 3])
        assert {r.clients for r in plot.read_csv(str(path), 0)} == {1}
    figures = [draw_all(plot, tmp_path, [path], monkeypatch) for path in (old, empty, explicit)]
    assert figures[0] == figures[1] == figures[2]
    assert "scaling-clients" not in {f["name"] for f in figures[0]}
    result = run_plot(old)
    assert result.returncode == 0, result.stderr
    index = (tmp_path / "old.plots" / "index.html").read_text()
    assert "scaling-clients" not in index and "<th>clients</th>" not in index


def test_compare_key_separates_client_counts(tmp_path):
    plot = plot_module()
    fast, slow = [1000, 1010, 1020, 1030, 1040], [1200, 1210, 1220, 1230, 1240]
    columns = compare_columns() + ["pairs", "clients", "pair_sharing"]

    def runs_rows(one, four):
        return [rep_row("posix-mq", "latency", 64, one) | {"pairs": "1", "clients": "1"},
                rep_row("posix-mq", "latency", 64, four) | {"pairs": "1", "clients": "4"}]

    a = write_csv(tmp_path / "a.csv", runs_rows(fast, slow), columns=columns)
    b = write_csv(tmp_path / "b.csv", runs_rows(fast, slow), columns=columns)
    rows = plot.read_csv(str(a), 0)
    assert rows[0].compare_key() != rows[1].compare_key() and rows[0].cell_key() != rows[1].cell_key()
    assert rows[0].compare_key()[plot.CLIENTS_INDEX] == 1 and rows[1].compare_key()[plot.CLIENTS_INDEX] == 4
    assert plot.COMPARE_KEY_NAMES[plot.CLIENTS_INDEX] == "clients" and len(plot.COMPARE_KEY_NAMES) == len(rows[0].compare_key())
    runs = [plot.Run(i, str(p), None, plot.read_csv(str(p), i)) for i, p in enumerate((a, b))]
    comparison = plot.compare_runs(runs, 0.01)
    # One client against one client, four against four: never one client's figure against a server's total.
    assert len(comparison.cells) == 2 and comparison.duplicates == 0
    assert all(cell.changes[1].verdict == "no significant change" for cell in comparison.cells)
    out = tmp_path / "out"
    result = run_plot(a, b, "--out", out)
    assert result.returncode == 0, result.stderr
    page = (out / "compare.html").read_text()
    assert "<th>clients</th>" in page and "<th>pairs</th>" not in page and "produce, paced rate/s, clients." in page
    cells = page[page.index("<h2>Cells in every run"):page.index('<h2 id="missing">')]
    assert cells.count("<td>posix-mq</td>") == 2 and "<td>1</td>" in cells and "<td>4</td>" in cells
    # The heat map's rows tell the two apart.
    assert plot.series_label(plot.series_key(rows[1].compare_key()), {"clients"}).endswith("· 4 clients")
