import ArgumentParser
import IPCBench

/// `ipcbench run`'s options as the user gives them; RunRequest holds the rules they must satisfy.
struct RunOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Comma-separated mechanism ids (see `ipcbench list`).", valueName: "ids"))
    var mechanisms: String?

    @Option(help: ArgumentHelp("Comma-separated message sizes: bytes, or with K/M/G suffix (×1024). Default \(RunInput.defaultSizes).", valueName: "sizes"))
    var sizes: String?

    @Option(name: [.customLong("mode"), .customLong("modes")],
            help: ArgumentHelp("latency (ping-pong), throughput (streaming), or both comma-separated.", valueName: "modes"))
    var mode = "latency,throughput"

    @Option(help: ArgumentHelp("Comma-separated variants to keep (see `ipcbench list`). Default: every variant.", valueName: "variants"))
    var variants: String?

    @Option(help: ArgumentHelp(
        "How workers wait: comma-separated \(WaitStrategy.allCases.map(\.rawValue).joined(separator: ", ")), or all. Each is its own rows; a mechanism that does not support one gives unavailable rows (see `ipcbench list`). Default: block.",
        valueName: "strategies"))
    var wait = "block"

    @Option(name: .customLong("spin-then-block"), parsing: .unconditional, help: ArgumentHelp(
        "--wait spin-then-block: microseconds of non-blocking retries before a blocking wait, \(RunInput.spinThenBlockRange.lowerBound) to \(RunInput.spinThenBlockRange.upperBound). Default \(Double(WaitStrategy.defaultSpinNanoseconds) / 1000).",
        valueName: "us"))
    var spinThenBlock = Double(WaitStrategy.defaultSpinNanoseconds) / 1000

    @Option(parsing: .unconditional, help: ArgumentHelp(
        "--wait timed: seconds a wait may last before the cell fails with a timeout, \(RunInput.waitTimeoutRange.lowerBound) to \(RunInput.waitTimeoutRange.upperBound). Default \(WaitStrategy.defaultTimeoutSeconds).",
        valueName: "seconds"))
    var waitTimeout = WaitStrategy.defaultTimeoutSeconds

    @Option(parsing: .unconditional, help: ArgumentHelp("CPU to pin the producer to. Default: the first CPU this process may use.", valueName: "cpu"))
    var producerCPU: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("CPU to pin the consumer to. Default: the second CPU this process may use (the first if there is only one).", valueName: "cpu"))
    var consumerCPU: Int?

    @Option(help: ArgumentHelp(Help.placements, valueName: "names"))
    var placements: String?

    @Option(help: ArgumentHelp(Help.pairs, valueName: "counts"))
    var pairs: String?

    @Option(help: ArgumentHelp(Help.clients, valueName: "counts"))
    var clients: String?

    @Option(help: ArgumentHelp(Help.readers, valueName: "counts"))
    var readers: String?

    @Option(help: ArgumentHelp(Help.memoryNode, valueName: "node"))
    var memoryNode: String?

    @Option(help: ArgumentHelp(Help.spinPauses, valueName: "count"))
    var spinPauses: String?

    @Option(parsing: .unconditional, help: "Process pairs per cell; figures are aggregated over them (median, coefficient of variation).")
    var repetitions = 5

    @Option(help: ArgumentHelp("Open-loop latency: send this many messages per second on a fixed schedule (e.g. 10000 or 10000/s) and measure from each intended send time. Default: closed-loop ping-pong.", valueName: "rate"))
    var rate: String?

    @Option(help: ArgumentHelp("Repeat each cell beyond --repetitions until the 95% confidence interval of its mean is within this (e.g. 5%) — at most 30 repetitions or 30 s per cell.", valueName: "percent"))
    var targetCi: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Upper bound on each repetition's timed loop, in seconds. Default 0.05, or none when --messages is given.", valueName: "seconds"))
    var duration: Double?

    @Option(parsing: .unconditional, help: ArgumentHelp("Timed messages (round trips in latency mode) per repetition. Default 1000000, usually cut short by --duration.", valueName: "count"))
    var messages: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Untimed warm-up messages per repetition. Default: 200 round trips, or up to 16 MiB of streaming.", valueName: "count"))
    var warmup: Int?

    @Option(help: ArgumentHelp("What the producer writes into each message: write (every payload byte, a per-message pattern; the default) or header (the 16-byte header only: signalling alone, the payload never moves).", valueName: "policy"))
    var produce = "write"

    @Option(help: ArgumentHelp("What the consumer does with each payload: none (header only), read (every byte once), verify (check the producer's pattern; needs --produce write).", valueName: "policy"))
    var touch = "read"

    @Option(help: ArgumentHelp("Results CSV path; its directory must exist, and an existing file is refused unless --force. Default ipcbench-out/<host>-<time>/results.csv, a new directory.", valueName: "path"))
    var out: String?

    @Flag(help: "Overwrite an existing --out file (and its metadata file) if it is a regular file.")
    var force = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds a repetition may run beyond its --duration before it is failed and its workers killed.", valueName: "seconds"))
    var cellTimeout = 60.0

    @Flag(help: "A few seconds' smoke run: sizes \(RunInput.quickSizes), one repetition, 0.05 s per cell.")
    var quick = false

    @Flag(help: "Stop at the first failed cell (default: keep going, report every failure, exit 1 at the end).")
    var failFast = false

    @Flag(help: "Run each cell's repetitions back to back, writing its row as soon as it is done. Default: in rounds, every cell once per round, so that each cell's repetitions sample the whole run (what `compare` needs); rows are written after the last round.")
    var backToBack = false

    @Flag(help: "No progress on stderr.")
    var quiet = false

    @Flag(help: "Also write the rows as JSON beside the CSV (X.json for X.csv), with the CSV's column names: numbers as numbers, empty fields as null.")
    var json = false

    @Flag(help: "Do not draw plots at the end (by default scripts/plot.py draws them when its Python environment is set up).")
    var noPlots = false

    @Option(help: ArgumentHelp("Soak test: run the suite over and over for this long (e.g. 600s, 10m, 1h), checking after every pass that nothing was leaked; report every failure and leak at the end.", valueName: "duration"))
    var soak: String?

    @Option(help: ArgumentHelp("Run each consumer on `ipcbench serve` at HOST:PORT (IPv4) and the producers here: the network mechanisms (\(MechanismRegistry.acrossHosts.map(\.id).joined(separator: ", "))) between two hosts. --consumer-cpu then names a CPU of the server. Latency is RTT/2 only.", valueName: "host:port"))
    var remote: String?

    /// Test-only: inject a fault into the producer's stream (drop, reorder or corrupt one message), or
    /// make the latency consumer exit early (exit-early).
    @Option(help: .private)
    var injectFault: String?

    /// The options as RunRequest takes them.
    var request: RunRequest {
        var request = RunRequest()
        request.mechanisms = mechanisms
        request.sizes = sizes
        request.mode = mode
        request.variants = variants
        request.wait = wait
        request.spinThenBlock = spinThenBlock
        request.waitTimeout = waitTimeout
        request.producerCPU = producerCPU
        request.consumerCPU = consumerCPU
        request.placements = placements
        request.pairs = pairs
        request.clients = clients
        request.readers = readers
        request.memoryNode = memoryNode
        request.spinPauses = spinPauses
        request.repetitions = repetitions
        request.rate = rate
        request.targetCI = targetCi
        request.duration = duration
        request.messages = messages
        request.warmup = warmup
        request.produce = produce
        request.touch = touch
        request.cellTimeout = cellTimeout
        request.quick = quick
        request.failFast = failFast
        request.backToBack = backToBack
        request.soak = soak
        request.remote = remote
        request.injectFault = injectFault
        return request
    }
}


/// The longer help texts of RunOptions.
private enum Help {
    static let placements =
        "Comma-separated named placements: cross-cpu (the first two allowed CPUs), \(NamedPlacement.allCases.map(\.rawValue).joined(separator: ", ")). Default: cross-cpu,same-cpu for latency, cross-cpu for throughput. Ones this machine cannot offer are reported as unavailable."
    static let pairs =
        "Producer/consumer pairs of each cell that run at once, each pair on its own channel: a number or a comma-separated sweep (e.g. 1,2,4), \(RunInput.pairsRange.lowerBound) to \(RunInput.pairsRange.upperBound). Pair 0 keeps the placement; the others spread over unused cores, then SMT siblings, then share CPUs (the pair_sharing column says which). Rows give the aggregate msgs/s and bytes/s, latency merged over the pairs and the pairs' spread. Works with the placements cross-cpu, same-cpu and unpinned. Default 1."
    static let clients =
        "Producers (clients) one consumer (the server) serves at once: a number or a comma-separated sweep (e.g. 1,2,4), \(RunInput.pairsRange.lowerBound) to \(RunInput.pairsRange.upperBound). For mechanisms with a many-to-one shape (fifo, unix-stream, tcp, posix-mq, udp, and shm-posix's spin variants; `ipcbench list` says how each serves them); others give unavailable rows. The server keeps the consumer's CPU; clients start on the producer's and spread over the rest. Rows give the server's total msgs/s and bytes/s and latency merged over the clients. Not combined with --pairs above 1. Default 1."
    static let readers =
        "Consumers (readers) that each receive every message of one producer, streaming only: a number or a comma-separated sweep, \(RunInput.pairsRange.lowerBound) to \(RunInput.pairsRange.upperBound). For mechanisms with a one-to-many shape (shm-posix in-place/spin: one broadcast ring read in place by all; unix-stream: the message written to a socket per reader); others give unavailable rows. Rows give the bytes delivered to all readers per second. Not combined with --pairs or --clients above 1. Default 1."
    static let memoryNode =
        "NUMA node for the shared memory of shm-posix, shm-sysv, shm-huge, shm-memfd, mmap-file and memfd cells: a node number, local (the consumer's node) or remote (the node farthest from it). The pages are bound before first touch and checked by each worker. Other mechanisms are not affected (their memory_node stays empty). Default: the kernel decides."
    static let spinPauses =
        "PAUSE instructions between two polls of a spinning waiter (the shared-memory rings' spin variants), \(RunConfiguration.spinPausesRange.lowerBound) to \(RunConfiguration.spinPausesRange.upperBound). Polling too often pulls the cache line away from the writer, too rarely notices a message late; the best pace depends on how far apart the two CPUs are. Default: 3 on Intel CPUs; elsewhere 1 when the cell's cache-line floor is under 150 ns round trip, else 3."
}
