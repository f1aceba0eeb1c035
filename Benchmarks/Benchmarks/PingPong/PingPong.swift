import Benchmark
import Foundation
import IPCBench

// One real ping-pong cell per stream mechanism (64-byte messages, closed loop, touch=read), run
// exactly as `ipcbench run` runs it: SuiteRunner.runCell starts a consumer and a producer process
// (the built `ipcbench` binary re-executed as `worker`), times a fixed number of round trips and
// tears everything down. Each benchmark iteration is one whole cell, so wall clock is per cell
// (process start-up and teardown included); the cell's own median RTT/2 is a custom metric.

/// Messages timed per cell: enough for a stable median, few enough that a cell takes ~0.1 s.
let timedMessages = 5_000
let messageBytes = 64

let halfRoundTripP50 = BenchmarkMetric.custom("p50 RTT/2 (ns)", polarity: .prefersSmaller, useScalingFactor: false)
let halfRoundTripP99 = BenchmarkMetric.custom("p99 RTT/2 (ns)", polarity: .prefersSmaller, useScalingFactor: false)

/// The `ipcbench` executable that plays the workers: $IPCBENCH_WORKER, else the root package's
/// release build, else one built inside this package (`swift build -c release --product ipcbench`
/// here), else the root package's debug build. It must be built from the same sources as the IPCBench
/// library linked here (the worker protocol is JSON between the two), so build the root package
/// before benchmarking: `swift build -c release` in the repository root.
enum Worker {
    /// The repository root: this file is <root>/Benchmarks/Benchmarks/PingPong/PingPong.swift.
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let candidates: [String] = {
        var paths: [String] = []
        if let override = ProcessInfo.processInfo.environment["IPCBENCH_WORKER"], !override.isEmpty { paths.append(override) }
        paths.append(repositoryRoot.appendingPathComponent(".build/release/ipcbench").path)
        paths.append(repositoryRoot.appendingPathComponent("Benchmarks/.build/release/ipcbench").path)
        paths.append(repositoryRoot.appendingPathComponent(".build/debug/ipcbench").path)
        return paths
    }()

    static let executable: String? = candidates.first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Why the worker may not match the library linked here: a source file changed after it was built.
    static func stalenessWarning(_ executable: String) -> String? {
        let files = FileManager.default
        guard let built = (try? files.attributesOfItem(atPath: executable))?[.modificationDate] as? Date,
              let sources = files.enumerator(atPath: repositoryRoot.appendingPathComponent("Sources").path)
        else { return nil }
        for case let relative as String in sources where relative.hasSuffix(".swift") || relative.hasSuffix(".c") || relative.hasSuffix(".h") {
            let path = repositoryRoot.appendingPathComponent("Sources").appendingPathComponent(relative).path
            if let modified = (try? files.attributesOfItem(atPath: path))?[.modificationDate] as? Date, modified > built {
                return "warning: \(executable) is older than Sources/\(relative); rebuild it (swift build -c release in \(repositoryRoot.path)) so the worker matches this library"
            }
        }
        return nil
    }
}

func printToStandardError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

let benchmarks: @Sendable () -> Void = {
    let worker = Worker.executable
    if let worker {
        if let warning = Worker.stalenessWarning(worker) { printToStandardError(warning) }
    } else {
        printToStandardError(
            "PingPong: skipped — no ipcbench worker executable at \(Worker.candidates.joined(separator: " or ")). "
                + "Build it first: (cd \(Worker.repositoryRoot.path) && swift build -c release), or set IPCBENCH_WORKER.")
    }

    let placement = Placement.defaultPlacement(allowedCPUs: Affinity.allowedCPUs())
    let limits = PairLimits(workerExecutable: worker ?? "/nonexistent/ipcbench", cellTimeoutSeconds: 30, setupTimeoutSeconds: 10)

    for id in ["pipe", "unix-stream", "tcp"] {
        guard let mechanism = MechanismRegistry.mechanism(id: id) else {
            printToStandardError("PingPong: mechanism \(id) is not registered; skipped")
            continue
        }
        let configuration = RunConfiguration(
            mechanisms: [mechanism], modes: [.latency], sizes: [messageBytes], touch: .read, placement: placement,
            repetitions: 1, durationSeconds: 0, maximumMessages: timedMessages, warmupMessages: 500, limits: limits)
        guard let cell = configuration.cells.first else { continue }

        Benchmark(
            "ping-pong \(id) \(messageBytes) B",
            configuration: .init(
                metrics: [.wallClock, halfRoundTripP50, halfRoundTripP99],
                tags: ["placement": placement.name, "messages": "\(timedMessages)"],
                warmupIterations: 1,
                scalingFactor: .one,
                maxDuration: .seconds(5),
                maxIterations: 25,
                skip: worker == nil,
                thresholds: [
                    .wallClock: BenchmarkThresholds(relative: [.p50: 25, .p75: 35]),
                    halfRoundTripP50: BenchmarkThresholds(relative: [.p50: 20, .p75: 30]),
                    // The tail moves with whatever else the two vCPUs are doing; only a gross change fails.
                    halfRoundTripP99: BenchmarkThresholds(relative: [.p50: 50]),
                ])
        ) { benchmark in
            guard let outcome = SuiteRunner.runCell(cell, configuration) else {
                benchmark.error("interrupted")
                return
            }
            benchmark.stopMeasurement()
            guard outcome.status.isOK, let halfRoundTrip = outcome.halfRoundTrip else {
                benchmark.error("\(id) cell \(outcome.status.text) (worker \(limits.workerExecutable))")
                return
            }
            guard outcome.messages == UInt64(timedMessages), outcome.lost == 0, outcome.reordered == 0, outcome.corrupt == 0 else {
                benchmark.error("\(id) cell: \(outcome.messages) messages, lost \(outcome.lost), reordered \(outcome.reordered), corrupt \(outcome.corrupt)")
                return
            }
            benchmark.measurement(halfRoundTripP50, Int(halfRoundTrip.p50.rounded()))
            benchmark.measurement(halfRoundTripP99, Int(halfRoundTrip.p99.rounded()))
        }
    }
}
