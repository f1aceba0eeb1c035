import Foundation
@testable import IPCBench
import Testing

@Suite("Units")
struct UnitTests {
    @Test("Repetitions run in rounds, every cell once per round, unless back to back; a failed cell runs no more")
    func repetitionOrder() {
        var configuration = RunConfiguration(
            mechanisms: [PipeMechanism()], modes: [.throughput], sizes: [16, 32, 64], placement: Placement(producerCPU: nil, consumerCPU: nil),
            repetitions: 3, durationSeconds: 0, maximumMessages: 10, limits: TestSupport.limits)
        for interleaved in [true, false] {
            configuration.interleavesRepetitions = interleaved
            var order: [Int] = []
            let outcomes = SuiteRunner.run(configuration, pairs: { cell, _, _ in
                order.append(cell.messageBytes)
                // The 32-byte cell fails in its second repetition.
                if cell.messageBytes == 32, order.filter({ $0 == 32 }).count == 2 { throw IPCError.worker("injected") }
                func result(_ role: Role) -> WorkerResult {
                    var result = WorkerResult(
                        role: role, cpuBefore: 0, cpuAfter: 0, messages: 10, messagesSentByProducer: 10, payloadBytes: 10 * UInt64(cell.messageBytes),
                        lost: 0, reordered: 0, corrupt: 0, loopStartNanoseconds: 1_000, loopEndNanoseconds: 2_000, readChecksum: 0)
                    result.lastReceiveNanoseconds = 2_000
                    return result
                }
                return [ProcessPair.Results(producer: result(.producer), consumer: result(.consumer))]
            }) { _, _, _ in }
            #expect(order == (interleaved ? [16, 32, 64, 16, 32, 64, 16, 64] : [16, 16, 16, 32, 32, 64, 64, 64]), "interleaved \(interleaved): \(order)")
            let repetitions = outcomes.map { $0.repetitions }, figures = outcomes.map { $0.headlinePerRepetition.count }
            #expect(repetitions == [3, 1, 3] && figures == [3, 0, 3], "\(repetitions) \(figures)")
            let failure = outcomes[1].status.text
            #expect(failure.hasPrefix("failed: ") && failure.contains("injected"), "\(failure)")
        }
    }

    @Test("A cell whose workers share one CPU tells its endpoints so (the spinning rings then yield at once)")
    func peerSharesCPU() {
        var configuration = RunConfiguration(
            mechanisms: [POSIXSharedMemoryMechanism()], modes: [.latency], sizes: [64], placement: Placement(producerCPU: 0, consumerCPU: 0),
            repetitions: 1, durationSeconds: 0, maximumMessages: 10, limits: TestSupport.limits)
        configuration.placements += [Placement(producerCPU: 0, consumerCPU: 1), Placement(producerCPU: nil, consumerCPU: nil)]
        let shared = Dictionary(grouping: configuration.cells) { $0.placement.consumerCPU }
            .mapValues { cells in cells.map { configuration.task(for: $0).options.peerSharesCPU } }
        #expect(shared[0]?.allSatisfy { $0 } == true && shared[1]?.allSatisfy { !$0 } == true && shared[nil]?.allSatisfy { !$0 } == true,
                "\(shared)")
    }

    @Test("Sizes parse as bytes with binary K/M/G suffixes")
    func parsesSizes() {
        #expect(ByteSize.parse("64") == 64)
        #expect(ByteSize.parse("4K") == 4096)
        #expect(ByteSize.parse("4k") == 4096)
        #expect(ByteSize.parse("1M") == 1 << 20)
        #expect(ByteSize.parse("1G") == 1 << 30)
        #expect(ByteSize.parse("0") == 0) // refused by the range check, with the range in the message
        for bad in ["", "-1", "1Q", "K", "1.5K", "4KiB", "１"] {
            #expect(ByteSize.parse(bad) == nil, "\(bad)")
        }
        #expect(ByteSize.format(64) == "64 B")
        #expect(ByteSize.format(4096) == "4 KiB")
        #expect(ByteSize.format(1536) == "1.5 KiB")
        #expect(ByteSize.format(1 << 20) == "1 MiB")
    }

    @Test("The sequence check counts gaps as lost and late arrivals as reordered")
    func sequenceCheck() {
        var check = SequenceCheck()
        for sequence: UInt64 in [0, 1, 2, 4, 3, 5, 8] { check.observe(sequence) }
        // 3 arrived late (reordered, no longer lost); 6 and 7 missing.
        #expect(check.reordered == 1)
        #expect(check.lost == 2)
        check.finish(sentCount: 11)
        #expect(check.lost == 4)
    }

    @Test("The payload pattern verifies its own message and rejects another's, a torn one, and a stale one")
    func payloadPattern() {
        for size in [16, 17, 64, 100, 4096] {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
            defer { buffer.deallocate() }
            MessageFormat.stamp(buffer, sequence: 7, sentAt: 123)
            MessageFormat.writePattern(buffer, sequence: 7)
            let view = UnsafeRawBufferPointer(buffer)
            #expect(MessageFormat.sequence(of: view) == 7 && MessageFormat.sentAt(of: view) == 123)
            #expect(MessageFormat.patternMatches(view, sequence: 7))
            if size > MessageFormat.headerBytes {
                #expect(!MessageFormat.patternMatches(view, sequence: 8), "stale payload accepted at \(size)")
                buffer[size - 1] ^= 1
                #expect(!MessageFormat.patternMatches(view, sequence: 7), "torn payload accepted at \(size)")
            }
        }
    }

    @Test("Statistics over known samples")
    func statistics() throws {
        #expect(Statistics.median([3, 1, 2]) == 2)
        #expect(Statistics.median([4, 1, 2, 3]) == 2.5)
        #expect(Statistics.median([]) == nil)
        // Sample stddev of [2,4,4,4,5,5,7,9] is 2.138; mean 5.
        let cv = try #require(Statistics.coefficientOfVariation([2, 4, 4, 4, 5, 5, 7, 9]))
        #expect(abs(cv - 0.42762) < 1e-4)
        #expect(Statistics.coefficientOfVariation([5]) == nil)
        // Mean 5, s = 2.138, n = 8, t(0.975, 7) = 2.365 → half-width 1.788.
        let interval = try #require(Statistics.confidenceInterval95([2, 4, 4, 4, 5, 5, 7, 9]))
        #expect(abs(interval.lowerBound - 3.2122) < 1e-3 && abs(interval.upperBound - 6.7878) < 1e-3)
        #expect(abs((Statistics.relativeHalfWidth(interval) ?? 0) - 0.35757) < 1e-3)
        // Two samples: t(0.975, 1) = 12.706; mean 11, s = 1.4142 → half-width 12.706.
        let wide = try #require(Statistics.confidenceInterval95([10, 12]))
        #expect(abs(wide.upperBound - 23.706) < 1e-3)
        #expect(Statistics.confidenceInterval95([1]) == nil)
    }

    @Test("Latency histograms survive the trip between processes and report percentiles")
    func histogramRoundTrip() throws {
        var histogram = LatencyHistogram()
        for value in 1...10_000 { histogram.record(UInt64(value) * 100) }
        let decoded = try JSONDecoder().decode(LatencyHistogram.self, from: JSONEncoder().encode(histogram))
        #expect(decoded.count == 10_000)
        let summary = try #require(decoded.summary(scale: 0.5))
        #expect(abs(summary.p50 - 250_000) / 250_000 < 0.002)
        #expect(abs(summary.p99 - 495_000) / 495_000 < 0.002)
        #expect(summary.min == 50)
        var merged = histogram
        merged.merge(decoded)
        #expect(merged.count == 20_000)
    }

    @Test("CPU lists in the kernel's format")
    func cpuLists() {
        #expect(Affinity.parseCPUList("0-3,8,10-11\n") == [0, 1, 2, 3, 8, 10, 11])
        #expect(Affinity.parseCPUList("0") == [0])
        #expect(Affinity.parseCPUList("3-1") == nil)
    }

    @Test("Default placement uses two CPUs when there are two")
    func defaultPlacement() {
        #expect(Placement.defaultPlacement(allowedCPUs: [0, 1, 2]) == Placement(producerCPU: 0, consumerCPU: 1))
        #expect(Placement.defaultPlacement(allowedCPUs: [5]).name == "same-cpu")
        #expect(Placement.defaultPlacement(allowedCPUs: [0, 1]).name == "cross-cpu")
    }

    @Test("CSV fields with commas or quotes are quoted")
    func csvQuoting() {
        #expect(CSVReport.quoted("ok") == "ok")
        #expect(CSVReport.quoted("failed: a, b") == "\"failed: a, b\"")
        #expect(CSVReport.quoted("say \"hi\"") == "\"say \"\"hi\"\"\"")
    }
}

@Suite("Spinning waiters' pace")
struct SpinPaceTests {
    @Test("3 pauses on Intel at every floor; elsewhere 1 under a 150 ns floor, else 3; the vendor from /proc/cpuinfo")
    func paceByVendor() {
        for floor in [80.0, 149.0, 150.0, 400.0, nil] {
            #expect(SpinNotifier.defaultPausesPerPoll(cacheLineRoundTrip: floor, vendor: .intel) == 3)
        }
        for vendor in [CPUVendor.amd, .other] {
            #expect(SpinNotifier.defaultPausesPerPoll(cacheLineRoundTrip: 149, vendor: vendor) == 1)
            #expect(SpinNotifier.defaultPausesPerPoll(cacheLineRoundTrip: nil, vendor: vendor) == 1)
            #expect(SpinNotifier.defaultPausesPerPoll(cacheLineRoundTrip: 150, vendor: vendor) == 3)
        }
        #expect(CPUVendor(cpuinfo: "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\n") == .intel)
        #expect(CPUVendor(cpuinfo: "processor\t: 0\nvendor_id\t: AuthenticAMD\n") == .amd)
        #expect(CPUVendor(cpuinfo: "processor\t: 0\nBogoMIPS\t: 50.00\n") == .other)
    }
}

@Suite("Loop clock")
struct LoopClockTests {
    @Test("The latency loops' clock converts its ticks to the same nanoseconds as CLOCK_MONOTONIC")
    func loopClockAgreesWithMonotonic() throws {
        for clock in [LoopClock.host, .monotonic] {
            let ticksBefore = clock.now()
            let before = MonotonicClock.now()
            usleep(30_000)
            let ticksAfter = clock.now()
            let after = MonotonicClock.now()
            let measured = Double(clock.nanoseconds(ticksAfter &- ticksBefore))
            let reference = Double(after - before)
            #expect(abs(measured - reference) < 0.01 * reference, "\(clock.description): \(measured) ns vs \(reference) ns")
            let second = Double(clock.nanoseconds(clock.ticks(nanoseconds: 1_000_000_000)))
            #expect(abs(second - 1e9) < 100, "\(second)")
            let overhead = clock.measureOverhead(reads: 100_000)
            #expect(overhead.nanosecondsPerRead > 0 && overhead.nanosecondsPerRead < 1_000)
            // The most common step is a real step: no finer than the smallest one.
            let typical = try #require(overhead.typicalStepNanoseconds)
            #expect(typical >= Double(overhead.smallestStepNanoseconds) - 1 && typical < 1_000, "\(typical) ns")
        }
        #if arch(x86_64)
        // Where the kernel keeps time with the TSC, the loops use it too.
        if LoopClock.timeStampCounterIsUsable { #expect(LoopClock.host.usesTimeStampCounter) }
        #endif
    }
}

@Suite("Interval recorder")
struct IntervalRecorderTests {
    @Test("Short intervals counted tick by tick and long ones in the histogram add up to the same distribution")
    func shortAndLongIntervalsAgreeWithTheHistogram() {
        var recorder = IntervalRecorder(nanosecondsPerTick: 1)
        var reference = LatencyHistogram()
        let limit = UInt64(IntervalRecorder.exactTicks)
        // Both sides of the boundary, zero, and values far beyond it.
        let intervals: [UInt64] = [0, 1, 57, 180, 180, 181, limit - 1, limit, limit + 1, 25_000, 3_000_000_000]
        for (index, interval) in intervals.enumerated() {
            let start = UInt64(1_000_000 + index * 10)
            recorder.record(from: start, to: start + interval)
            reference.record(interval)
        }
        // An end that reads earlier than its start (two CPUs' counters) counts as 0, not as a wrap-around.
        recorder.record(from: 500, to: 499)
        reference.record(0)
        let recorded = recorder.finish()
        #expect(recorded.count == UInt64(intervals.count + 1))
        #expect(recorded.summary() == reference.summary())
        #expect(recorded.summary()?.max ?? 0 >= 2_990_000_000)
    }
}

@Suite("Floor probe")
struct FloorProbeTests {
    @Test("A cache-line ping-pong between two CPUs gives a plausible floor and leaves the caller's affinity alone")
    func probesFloor() throws {
        let cpus = Affinity.allowedCPUs()
        try #require(cpus.count >= 2, "needs two CPUs")
        let before = Affinity.allowedCPUs()
        let floor = try #require(FloorProbe.roundTripNanoseconds(between: cpus[0], and: cpus[1]))
        // Tens to a few hundred ns on real hardware; far below any kernel hand-off (µs).
        #expect(floor > 5 && floor < 20_000, "floor \(floor) ns")
        #expect(Affinity.allowedCPUs() == before)
        #expect(FloorProbe.roundTripNanoseconds(between: cpus[0], and: cpus[0]) == nil)
    }
}

@Suite("Results files and compare")
struct CompareTests {
    @Test("CSV records with quoted commas, quotes and newlines parse back")
    func parsesQuotedCSV() {
        let records = ResultsFile.parse("a,b,c\n1,\"x, y\",\"say \"\"hi\"\"\"\n2,\"two\nlines\",\n")
        #expect(records == [["a", "b", "c"], ["1", "x, y", "say \"hi\""], ["2", "two\nlines", ""]])
    }

    @Test("compare: a real run against itself gives ratios of 1 (one repetition: too few to judge); a non-results file is refused with status 2")
    func comparesRuns() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let csv = scratch + "/a.csv"
        let run = try TestSupport.runCLI(["run", "--quick", "--mechanisms", "pipe", "--sizes", "64", "--out", csv])
        #expect(run.status == 0)
        let same = try TestSupport.runCLI(["compare", csv, csv])
        #expect(same.status == 0, "\(same.stderr)")
        // Latency at cross-cpu and same-cpu, throughput at cross-cpu (the default placements).
        #expect(same.stdout.contains("3 matching cells: 3 too few repetitions to tell"), "\(same.stdout)")
        #expect(same.stdout.contains("1.000"))
        try "not,a,results\nfile\n".write(toFile: scratch + "/bad.csv", atomically: true, encoding: .utf8)
        let bad = try TestSupport.runCLI(["compare", csv, scratch + "/bad.csv"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("is not an ipcbench results CSV"), "\(bad.stderr)")
    }
}

@Suite("Ring loopback")
struct RingLoopbackTests {
    @Test("Both ends in one process: every message comes back with its sequence number, round and round the ring", arguments: [false, true])
    func exchangesComeBack(copying: Bool) throws {
        let ring = try RingLoopback(messageBytes: 64, copying: copying)
        // 64-byte messages give a throughput ring of 2 MiB / 128-byte slots: 20,000 wraps it more than once.
        for sequence in UInt64(0)..<20_000 {
            let received = try ring.exchange(sequence: sequence)
            guard received == sequence else {
                Issue.record("sent \(sequence), got \(received) back")
                return
            }
        }
        #expect(throws: IPCError.self) { try RingLoopback(messageBytes: 8, copying: false) }
    }
}

@Suite("Which code ran")
struct SourceCommitTests {
    @Test("A source file changed after the binary was built is named, so the metadata's commit is not taken for the code that ran")
    func changedSourcesAreNamed() throws {
        let root = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let files = FileManager.default
        for directory in [".git", "Sources/IPCBench", ".build/release"] {
            try files.createDirectory(atPath: root + "/" + directory, withIntermediateDirectories: true)
        }
        for file in ["Package.swift", "Sources/IPCBench/A.swift", "Sources/IPCBench/B.swift", ".build/release/ipcbench"] {
            #expect(files.createFile(atPath: root + "/" + file, contents: Data("x".utf8)))
        }
        let link = root + "/exe"
        try files.createSymbolicLink(atPath: link, withDestinationPath: root + "/.build/release/ipcbench")
        func age(_ file: String, seconds: Double) throws {
            try files.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -seconds)], ofItemAtPath: root + "/" + file)
        }
        for file in ["Package.swift", "Sources/IPCBench/A.swift", "Sources/IPCBench/B.swift"] { try age(file, seconds: 100) }
        try age(".build/release/ipcbench", seconds: 50)
        #expect(SystemFacts.sourcesChangedSinceBuild(executable: link) == [])
        try age("Sources/IPCBench/B.swift", seconds: 10)
        #expect(SystemFacts.sourcesChangedSinceBuild(executable: link) == ["Sources/IPCBench/B.swift"])
        // Outside any checkout: nothing to say.
        try files.removeItem(atPath: root + "/.git")
        #expect(SystemFacts.sourcesChangedSinceBuild(executable: link) == [])
    }
}
