import subprocess, csv, statistics, sys, os, tempfile
builds = {"before": "/tmp/before/.build/release/ipcbench", "after": "/work/main/.build/release/ipcbench"}
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 12
cmd = ["run", "--mechanisms", "pipe,unix-stream", "--sizes", "64", "--mode", "latency", "--placements", "same-cpu,cross-cpu",
       "--repetitions", "3", "--messages", "100000", "--duration", "10", "--no-plots", "--quiet"]
values = {}
for r in range(rounds):
    order = ["before", "after"] if r % 4 in (0, 3) else ["after", "before"]
    for b in order:
        out = tempfile.mktemp(suffix=".csv", dir="/tmp/ab")
        subprocess.run([builds[b]] + cmd + ["--out", out], check=True, stdout=subprocess.DEVNULL)
        for row in csv.DictReader(open(out)):
            key = (row["mechanism"], row["placement"])
            values.setdefault(key, {}).setdefault(b, []).append(float(row["rtt_half_mean_ns"]))
for key, v in sorted(values.items()):
    ratios = [a / b for a, b in zip(v["after"], v["before"])]
    print(f"{key[0]:12} {key[1]:9} 64 B mean RTT/2 ns: before {statistics.median(v['before']):.0f} {[round(x) for x in v['before']]}  after {statistics.median(v['after']):.0f} {[round(x) for x in v['after']]}  after/before per round median {statistics.median(ratios):.3f}")
