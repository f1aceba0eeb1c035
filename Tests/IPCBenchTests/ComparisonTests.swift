import Foundation
@testable import IPCBench
import Testing

/// Issue 22: `compare` calls a change only when the repetitions say so.
@Suite("Comparisons")
struct ComparisonTests {
    @Test("Rank-sum p-values on fixed inputs match the exact distribution (answers from enumerating every ordering)")
    func rankSumKnownAnswers() {
        let cases: [([Double], [Double], Double)] = [
            ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 2.0 / 252),
            ([1, 3, 5, 7, 9], [2, 4, 6, 8, 10], 0.6904761904761905),
            ([10, 11, 12, 13], [9, 14, 15, 16, 17], 0.19047619047619047),
            ([1, 2, 3], [4, 5, 6], 0.1),
            ([5.0, 5.1, 5.2, 4.9, 5.05], [5.5, 5.6, 5.45, 5.7, 5.65, 5.58], 0.004329004329004329),
            ([1, 2, 2, 3], [2, 3, 4, 5], 0.11428571428571428),
        ]
        for (a, b, expected) in cases {
            #expect(abs(RankSumTest.pValue(a, b) - expected) < 1e-12, "\(a) vs \(b): \(RankSumTest.pValue(a, b)), expected \(expected)")
            #expect(abs(RankSumTest.pValue(b, a) - expected) < 1e-12, "two-sided: the order of the samples does not matter")
        }
        #expect(RankSumTest.pValue([7, 7, 7], [7, 7, 7]) == 1)
        #expect(abs(RankSumTest.smallestPValue(3, 3) - 0.1) < 1e-12)
        #expect(abs(RankSumTest.smallestPValue(4, 4) - 2.0 / 70) < 1e-12)
        #expect(abs(RankSumTest.smallestPValue(5, 5) - 2.0 / 252) < 1e-12)
        #expect(abs(RankSumTest.smallestPValue(30, 30) - 2 / 1.1826458156486142e17) < 1e-28)
    }

    @Test("The ratio's interval: order statistics of the pairwise ratios, chosen from U's distribution")
    func ratioInterval() throws {
        // m = n = 5, alpha 0.05: P(U <= 2) = 4/252 <= 0.025 < P(U <= 3) = 7/252, so k = 3: from the
        // 3rd smallest to the 3rd largest of the 25 ratios.
        let a: [Double] = [100, 101, 102, 103, 104], b = a.map { $0 * 1.2 }
        let ratio = try #require(RankSumTest.ratio(a, b, alpha: 0.05))
        let ratios = a.flatMap { x in b.map { $0 / x } }.sorted()
        #expect(ratio.interval == ratios[2]...ratios[22])
        #expect(abs(ratio.estimate - 1.2) < 1e-9)
        // Three a side cannot reach 95%: P(U = 0) = 1/20.
        #expect(RankSumTest.ratio([1, 2, 3], [4, 5, 6], alpha: 0.05)?.interval == nil)
    }

    static let header = "run_id,mechanism,variant,wait,mode,message_bytes,placement,touch,produce,paced_rate_per_s,rtt_half_p50_ns,bytes_per_s,headline_per_repetition,status"

    /// A results file with one ok row per cell: (mechanism, mode, per-repetition figures).
    static func results(_ cells: [(String, String, [Double])], in directory: String, named name: String, perRepetition: Bool = true) throws -> String {
        var text = header + "\n"
        for (mechanism, mode, values) in cells {
            let median = Statistics.median(values)!
            let figures = mode == "latency" ? "\(median)," : ",\(median)"
            let list = perRepetition ? values.map { String($0) }.joined(separator: " ") : ""
            text += "r,\(mechanism),write/read,block,\(mode),64,cross-cpu,read,write,,\(figures),\(list),ok\n"
        }
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static let base: [Double] = [5000, 5100, 4950, 5050, 4980]

    @Test("Verdicts: unchanged, slower and faster per mode, too few repetitions, old files unjudged, malformed figures refused")
    func verdicts() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let a = try Self.results(
            [("pipe", "latency", Self.base), ("fifo", "latency", Self.base), ("tcp", "throughput", Self.base), ("udp", "throughput", Self.base),
             ("unix-stream", "latency", [5000, 5100, 4950]), ("posix-mq", "latency", Self.base)],
            in: scratch, named: "a.csv")
        let b = try Self.results(
            [("pipe", "latency", Self.base.reversed()), ("fifo", "latency", Self.base.map { $0 * 1.2 }),
             ("tcp", "throughput", Self.base.map { $0 / 1.2 }), ("udp", "throughput", Self.base.map { $0 * 1.2 }),
             ("unix-stream", "latency", [6000, 6100, 5950]), ("sysv-msg", "latency", Self.base)],
            in: scratch, named: "b.csv")
        let comparison = try RunComparison(baseline: ResultsFile(path: a), candidate: ResultsFile(path: b))
        let byMechanism = Dictionary(uniqueKeysWithValues: comparison.cells.map { ($0.mechanism, $0) })
        #expect(byMechanism.count == 5, "sysv-msg has no baseline cell: \(byMechanism.keys.sorted())")
        #expect(byMechanism["pipe"]?.verdict == .unchanged)
        #expect(byMechanism["pipe"].map { abs($0.ratio - 1) < 1e-9 } == true)
        let fifo = try #require(byMechanism["fifo"])
        #expect(fifo.verdict == .slower && abs(fifo.slowdownPercent - 20) < 1e-6 && fifo.ratioLow! > 1, "\(fifo)")
        let tcp = try #require(byMechanism["tcp"])
        #expect(tcp.verdict == .slower && abs(tcp.slowdownPercent - 20) < 1e-6, "throughput down to 1/1.2 is 20% slower: \(tcp)")
        #expect(byMechanism["udp"]?.verdict == .faster)
        #expect(byMechanism["unix-stream"]?.verdict == .tooFewRepetitions, "3 a side cannot reach p < 0.05 however large the change")
        #expect(comparison.regressions(beyond: 10).map(\.mechanism).sorted() == ["fifo", "tcp"])
        #expect(comparison.regressions(beyond: 25).isEmpty)
        #expect(comparison.summary.hasPrefix("5 matching cells: 2 slower, 1 faster, 1 no significant change, 1 too few repetitions to tell"),
                "\(comparison.summary)")
        // The gate wants the whole interval beyond the limit: about 4% slower in every repetition is
        // significant, not a 10% regression (interval 5150/5100 to 5300/4950: 1.0098–1.0707).
        let slightly = try Self.results([("fifo", "latency", Self.base.map { $0 + 200 })], in: scratch, named: "slightly.csv")
        let small = try RunComparison(baseline: ResultsFile(path: a), candidate: ResultsFile(path: slightly))
        #expect(small.cells.first?.verdict == .slower && small.regressions(beyond: 10).isEmpty && small.regressions(beyond: 0.5).count == 1,
                "\(small.cells)")
        // About 12% slower by its estimate, but the interval reaches down to 5500/5100 = 1.078: not shown to be beyond 10%.
        let spread = try Self.results([("fifo", "latency", [5640, 5800, 5500, 5700, 5600])], in: scratch, named: "spread.csv")
        let wide = try RunComparison(baseline: ResultsFile(path: a), candidate: ResultsFile(path: spread))
        #expect(wide.cells.first.map { $0.verdict == .slower && $0.slowdownPercent > 10 && $0.ratioLow! < 1.1 } == true, "\(wide.cells)")
        #expect(wide.regressions(beyond: 10).isEmpty && wide.regressions(beyond: 5).count == 1)

        // A file from before per-repetition figures: the ratio of the figures, unjudged.
        let old = try Self.results([("fifo", "latency", [6000])], in: scratch, named: "old.csv", perRepetition: false)
        let unjudged = try RunComparison(baseline: ResultsFile(path: a), candidate: ResultsFile(path: old)).cells
        #expect(unjudged.count == 1 && unjudged[0].verdict == .notJudged && abs(unjudged[0].ratio - 6000.0 / 5000) < 1e-9, "\(unjudged)")

        let bad = scratch + "/bad.csv"
        try (Self.header + "\nr,fifo,write/read,block,latency,64,cross-cpu,read,write,,5000,,5000 fast 5100,ok\n")
            .write(toFile: bad, atomically: true, encoding: .utf8)
        #expect {
            try RunComparison(baseline: ResultsFile(path: a), candidate: ResultsFile(path: bad))
        } throws: { "\($0)".contains("bad.csv, line 2: headline_per_repetition '5000 fast 5100' is not a list of positive numbers") }
    }

    @Test("The answer first: fastest to slowest per mode, size and placement, with margins and whether the repetitions show them apart")
    func ranking() throws {
        var configuration = RunConfiguration(
            mechanisms: ["pipe", "fifo", "unix-stream", "tcp"].map { MechanismRegistry.mechanism(id: $0)! }, modes: [.latency, .throughput],
            sizes: [64], placement: Placement(producerCPU: 0, consumerCPU: 1), repetitions: 5, limits: TestSupport.limits)
        configuration.variants = nil
        let spread: [Double] = [1.0, 1.02, 0.98, 1.01, 0.99]
        // Latency (ns): tcp 8000 < … ; fifo and pipe overlap (not apart); throughput (bytes/s) ranks the other way.
        let latency = ["pipe": 5000.0, "fifo": 5050, "unix-stream": 4000, "tcp": 8000]
        let outcomes = configuration.cells.map { cell -> CellOutcome in
            var outcome = CellOutcome(cell: cell, status: .ok)
            let base = latency[cell.mechanism.id]!
            let values = spread.map { $0 * (cell.mode == .latency ? base : 1e13 / base) }
            outcome.headlinePerRepetition = values
            if cell.mode == .latency {
                let p50 = Statistics.median(values)!
                outcome.halfRoundTrip = LatencySummary(min: p50, p50: p50, p90: p50, p99: p50, p99_9: p50, p99_99: p50, max: p50, mean: p50, stddev: 0)
            } else {
                outcome.bytesPerSecond = Statistics.median(values)
            }
            return outcome
        } + [CellOutcome(cell: configuration.cells[0], status: .failed("not ranked"))]
        let groups = Ranking.groups(outcomes)
        #expect(groups.count == 2 && groups.allSatisfy { $0.entries.count == 4 })
        for group in groups {
            #expect(group.entries.map(\.name) == ["unix-stream", "pipe", "fifo", "tcp"], "\(group.mode): \(group.entries.map(\.name))")
            #expect(group.entries.map(\.apart) == [nil, true, false, true], "\(group.mode): \(group.entries.map(\.apart))")
            #expect(abs(group.entries[1].margin - 1.25) < 1e-9 && abs(group.entries[3].margin - 8000.0 / 5050) < 1e-9)
        }
        let text = Ranking.render(groups, shown: 3)
        #expect(text.contains("latency 64 B cross-cpu     unix-stream 4.0 µs < pipe 5.0 µs ×1.25 ≈ fifo 5.0 µs ×1.01 … (1 more)"), "\(text)")
        #expect(text.contains("throughput 64 B cross-cpu  unix-stream 2.50 GB/s < pipe 2.00 GB/s ×1.25"), "\(text)")
    }

    @Test("A run ends with the ranking, on the console and in its metadata (for index.html)")
    func rankingOfARun() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let result = try TestSupport.runCLI(
            ["run", "--mechanisms", "pipe,fifo", "--sizes", "64", "--mode", "latency", "--placements", "cross-cpu", "--repetitions", "5",
             "--messages", "2000", "--quiet", "--out", scratch + "/r.csv"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Fastest first") && result.stdout.contains("latency 64 B cross-cpu  "), "\(result.stdout)")
        let metadata = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch + "/r.metadata.json"))) as? [String: Any]
        let ranking = metadata?["ranking"] as? [String]
        #expect(ranking?.count == 2 && ranking?[1].contains("pipe") == true && ranking?[1].contains("fifo") == true, "\(ranking ?? [])")
    }

    @Test("Runs that met different machines (stolen CPU time, the cache-line floor) are named in a warning")
    func conditionsWarning() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        func file(_ name: String, steal: String, floor: String) throws -> ResultsFile {
            let text = "mechanism,mode,message_bytes,placement,rtt_half_p50_ns,headline_per_repetition,steal_percent,floor_rtt_before_ns,status\n"
                + "pipe,latency,64,cross-cpu,5000,5000 5100 4950 5050 4980,\(steal),\(floor),ok\n"
            try text.write(toFile: scratch + "/" + name, atomically: true, encoding: .utf8)
            return try ResultsFile(path: scratch + "/" + name)
        }
        let quiet = try file("a.csv", steal: "0.2", floor: "190")
        #expect(try RunComparison(baseline: quiet, candidate: file("b.csv", steal: "1.0", floor: "200")).conditionsWarning == nil)
        let stolen = try RunComparison(baseline: quiet, candidate: file("c.csv", steal: "10.9", floor: "195")).conditionsWarning
        #expect(stolen?.contains("B: 10.9% CPU stolen by the host") == true, "\(stolen ?? "no warning")")
        #expect(try RunComparison(baseline: quiet, candidate: file("d.csv", steal: "0.2", floor: "260")).conditionsWarning?.contains("cache-line floor 260 ns") == true)
    }

    @Test("Rows whose pairs shared the machine differently are not compared; files from before the column still match")
    func pairSharingApart() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        func file(_ name: String, _ columns: String, _ values: String) throws -> ResultsFile {
            let text = "mechanism,mode,message_bytes,placement,\(columns)rtt_half_p50_ns,headline_per_repetition,status\n"
                + "pipe,latency,64,same-cpu,\(values)5000,5000 5100 4950 5050 4980,ok\n"
            try text.write(toFile: scratch + "/" + name, atomically: true, encoding: .utf8)
            return try ResultsFile(path: scratch + "/" + name)
        }
        let spread = try file("a.csv", "pairs,pair_sharing,", "2,none,")
        let squeezed = try file("b.csv", "pairs,pair_sharing,", "2,cpu,")
        #expect(try RunComparison(baseline: spread, candidate: squeezed).cells.isEmpty)
        #expect(try RunComparison(baseline: spread, candidate: file("c.csv", "pairs,pair_sharing,", "2,none,")).cells.count == 1)
        #expect(try RunComparison(baseline: file("old.csv", "", ""), candidate: file("new.csv", "pairs,pair_sharing,", "1,none,")).cells.count == 1)
    }

    @Test("compare from the command line: the gate's exit status, csv and json output, and one-line errors with status 2")
    func commandLine() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let a = try Self.results([("pipe", "latency", Self.base), ("tcp", "throughput", Self.base)], in: scratch, named: "a.csv")
        let slower = try Self.results([("pipe", "latency", Self.base.map { $0 * 1.2 }), ("tcp", "throughput", Self.base)], in: scratch, named: "b.csv")

        let gated = try TestSupport.runCLI(["compare", a, slower, "--fail-on-regression", "10%"])
        #expect(gated.status == 1, "\(gated.stderr)")
        #expect(gated.stderr.contains("1 cell(s) significantly slower by more than 10%:\n  pipe write/read block latency 64 B cross-cpu: +20.0% (B/A 1.200, interval 1.165–1.236, p = 0.008)"), "\(gated.stderr)")
        #expect(gated.stdout.contains("slower +20.0%") && gated.stdout.contains("~"), "\(gated.stdout)")
        #expect(try TestSupport.runCLI(["compare", a, slower, "--fail-on-regression", "25"]).status == 0)
        #expect(try TestSupport.runCLI(["compare", a, a, "--fail-on-regression", "0%"]).status == 0)

        let json = try TestSupport.runCLI(["compare", a, slower, "--format", "json"])
        let cells = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]]
        #expect(cells?.count == 2 && cells?.first?["verdict"] as? String == "slower", "\(json.stdout)")
        let csv = try TestSupport.runCLI(["compare", a, slower, "--format", "csv"])
        let rows = ResultsFile.parse(csv.stdout).filter { $0 != [""] }
        #expect(rows.first?.contains("p_value") == true && rows.count == 3 && rows[1].contains("slower"), "\(csv.stdout)")

        try "not,a,results\nfile\n".write(toFile: scratch + "/junk.csv", atomically: true, encoding: .utf8)
        let other = try Self.results([("fifo", "latency", Self.base)], in: scratch, named: "other.csv")
        for (arguments, expected) in [
            ([a, scratch + "/junk.csv"], "is not an ipcbench results CSV"),
            ([a, scratch + "/missing.csv"], "cannot read"),
            ([a, other], "no ok cell of"),
            ([a, slower, "--fail-on-regression", "ten"], "--fail-on-regression 'ten' is not a percentage"),
            ([a, slower, "--alpha", "0.7"], "--alpha 0.7 is out of range"),
            ([a, slower, "--format", "xml"], "xml"),
        ] {
            let result = try TestSupport.runCLI(["compare"] + arguments)
            #expect(result.status == 2 && result.stderr.contains(expected), "\(arguments): \(result.status) \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "one line: \(result.stderr)")
        }
    }

    @Test("--inject-fault slow makes the consumer take a fifth longer per message than its channel did")
    func slowedEndpointWaits() throws {
        final class BusyChannel: MessageEndpoint {
            var received = 0
            func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {}
            func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
                let start = MonotonicClock.now()
                while MonotonicClock.now() &- start < 200_000 {}
                received += 1
                return true
            }
            func close() {}
        }
        var task = WorkerTask(
            mechanismID: "pipe", role: .consumer, options: EndpointOptions(mode: .throughput, messageBytes: 64, variant: ""), produce: .write,
            touch: .read, cpu: nil, warmupMessages: 0, maximumMessages: 10, durationNanoseconds: 0, rendezvous: Rendezvous(), published: [:],
            fault: .slow)
        let channel = BusyChannel()
        let slowed = try #require(SlowedEndpoint.wrapping(channel, for: task))
        let start = MonotonicClock.now()
        for _ in 0..<21 { _ = try slowed.receive(size: 64) { _ in } }
        let elapsed = Double(MonotonicClock.now() - start)
        // 21 channel times of at least 200 µs, and after each but the first a wait of a fifth of one.
        #expect(channel.received == 21 && elapsed >= 21 * 200_000 + 20 * 40_000 * 0.95, "\(elapsed) ns")
        task.role = .producer
        #expect(SlowedEndpoint.wrapping(channel, for: task) == nil, "only the consumer waits")
    }
}
