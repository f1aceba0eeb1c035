import Benchmark
import Glibc
import IPCBench
import SystemPackage

// Micro-benchmarks of the work the timed loops do per message (Sources/IPCBench/Harness/Loops.swift).
// Each one measures only the hot call in an inner loop of `scalingFactor` calls; set-up (buffers,
// histograms, input values) happens before `startMeasurement()`. Every one must allocate nothing in
// the measured region: `.mallocCountTotal` is checked with a zero tolerance, against a baseline and
// against the committed static thresholds in Thresholds/ (see README.md).

/// Regression tolerances. Wall clock and rates: relative to the baseline, because absolute times
/// differ between machines. On this shared 2-vCPU VM identical runs minutes apart differed by up to
/// ~33% at p50/p75 (a build on the sibling vCPU, host steal), so a median must move by more than 35%
/// (p75: 50%) to fail; tighten these on a dedicated runner. Allocations: absolute zero difference at
/// every percentile, so a single new allocation per iteration fails the check.
enum Tolerance {
    static var time: BenchmarkThresholds { BenchmarkThresholds(relative: [.p50: 35, .p75: 50]) }
    static var rate: BenchmarkThresholds { BenchmarkThresholds(relative: [.p50: 35, .p75: 50]) }
    static var noAllocations: BenchmarkThresholds {
        BenchmarkThresholds(absolute: [.p0: 0, .p25: 0, .p50: 0, .p75: 0, .p90: 0, .p99: 0, .p100: 0])
    }
}

/// Reading speed in MB/s (10^6 bytes per second), computed inside the measured region.
let megabytesPerSecond = BenchmarkMetric.custom("MB/s", polarity: .prefersLarger, useScalingFactor: false)

/// Holds state made once in set-up. The benchmark moves it out into a local before measuring, so the
/// measured loop mutates a uniquely referenced local exactly as the timed loops do (no copy-on-write,
/// no exclusivity checks on a class property).
final class Slot<Value> {
    var value: Value?
    init(_ value: Value) { self.value = value }

    func take() -> Value {
        defer { value = nil }
        return value!
    }
}

/// Latencies as a run sees them: log-uniform from ~100 ns to ~1 ms (deterministic, so runs compare).
func sampleLatencies(count: Int) -> [UInt64] {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    return (0..<count).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let exponent = Double(state >> 11) / Double(1 << 53) * 13.3 + 6.6 // 2^6.6 ≈ 100 ns … 2^19.9 ≈ 1 ms
        return UInt64(exp2(exponent))
    }
}

/// A message buffer of `size` bytes, filled with the verify pattern of message `sequence`.
func patternedMessage(size: Int, sequence: UInt64) -> UnsafeMutableRawBufferPointer {
    let message = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
    MessageFormat.stamp(message, sequence: sequence, sentAt: MonotonicClock.now())
    MessageFormat.writePattern(message, sequence: sequence)
    return message
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 10,
        scalingFactor: .kilo,
        maxDuration: .seconds(1),
        maxIterations: 100_000,
        thresholds: [.wallClock: Tolerance.time, .throughput: Tolerance.rate, .mallocCountTotal: Tolerance.noAllocations]
    )

    // 0. Canary: exactly one allocation per call. If the malloc interposer ever stops counting, this
    // one reads 0 and fails the checks, instead of every zero-allocation assertion passing vacuously.
    Benchmark(
        "malloc counter canary",
        configuration: .init(
            metrics: [.mallocCountTotal], scalingFactor: .one, maxIterations: 10_000,
            thresholds: [.mallocCountTotal: Tolerance.noAllocations])
    ) { _ in
        let block = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 8)
        blackHole(block)
        block.deallocate()
    }

    // 1. LatencyHistogram.record: once per round trip in the producer and per message in the consumer.
    let values = sampleLatencies(count: 4096)
    let histogramSlot = Slot(LatencyHistogram())
    Benchmark("LatencyHistogram.record") { benchmark in
        var histogram = histogramSlot.take()
        defer { histogramSlot.value = histogram }
        values.withUnsafeBufferPointer { values in
            benchmark.startMeasurement()
            for index in benchmark.scaledIterations {
                histogram.record(values[index & 4095])
            }
            benchmark.stopMeasurement()
        }
        blackHole(histogram.count)
    }

    // 1b. IntervalRecorder.record: what the timed loops actually call per message — short intervals
    // counted tick by tick, long ones into the histogram (the values above reach both paths).
    // Made once (its counts are allocated then) and kept: the loops make one per repetition.
    let recorderSlot = Slot(IntervalRecorder(nanosecondsPerTick: 1))
    Benchmark("IntervalRecorder.record") { benchmark in
        var recorder = recorderSlot.take()
        defer { recorderSlot.value = recorder }
        values.withUnsafeBufferPointer { values in
            benchmark.startMeasurement()
            for index in benchmark.scaledIterations {
                recorder.record(from: 1_000, to: 1_000 &+ values[index & 4095])
            }
            benchmark.stopMeasurement()
        }
    }

    // 2. MonotonicClock.now: the latency loops read a clock once per message on each side (this one
    // where the TSC is unusable, see LoopClock).
    Benchmark("MonotonicClock.now") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(MonotonicClock.now())
        }
    }

    // 2b. The latency loops' own clock (LoopClock.host: RDTSC where the kernel keeps time with the
    // TSC, else CLOCK_MONOTONIC), read once per round trip by the producer and once per message by
    // the consumer.
    let loopClock = LoopClock.host
    Benchmark("LoopClock.now") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(loopClock.now())
        }
    }

    // 2c. The shared ring's enqueue and dequeue of one 64-byte message, both ends in this process
    // (RingLoopback: no waiting, no other process), in place and through private buffers (the copy
    // path): what RingChannel.send and .receive cost per message in the throughput loops.
    for copying in [false, true] {
        let name = "ring enqueue+dequeue 64 B \(copying ? "copy" : "in-place")"
        let ring: RingLoopback
        do {
            ring = try RingLoopback(messageBytes: 64, copying: copying)
        } catch {
            let line = "HotPaths: \(name) skipped: \(error)\n"
            _ = line.withCString { write(2, $0, strlen($0)) }
            continue
        }
        Benchmark(name) { benchmark in
            var wrong = 0
            benchmark.startMeasurement()
            do {
                for index in benchmark.scaledIterations {
                    let sequence = UInt64(truncatingIfNeeded: index)
                    if try ring.exchange(sequence: sequence) != sequence { wrong &+= 1 }
                }
            } catch {
                benchmark.error("ring exchange failed: \(error)")
            }
            benchmark.stopMeasurement()
            if wrong > 0 { benchmark.error("\(wrong) messages came back with the wrong sequence number") }
        }
    }

    // 3. The per-message bookkeeping around a 64-byte message: the producer stamps sequence number and
    // send time; the consumer reads both back and checks the sequence.
    let headerMessage = patternedMessage(size: 64, sequence: 0)
    Benchmark("Message stamp + SequenceCheck.observe") { benchmark in
        let message = headerMessage
        let incoming = UnsafeRawBufferPointer(message)
        var check = SequenceCheck()
        var delays: UInt64 = 0
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            MessageFormat.stamp(message, sequence: UInt64(truncatingIfNeeded: index), sentAt: MonotonicClock.now())
            let sequence = MessageFormat.sequence(of: incoming)
            delays &+= MonotonicClock.now() &- MessageFormat.sentAt(of: incoming)
            check.observe(sequence)
        }
        benchmark.stopMeasurement()
        blackHole(delays)
        if check.lost != 0 || check.reordered != 0 {
            benchmark.error("sequence check miscounted: lost \(check.lost), reordered \(check.reordered)")
        }
    }

    // 4. touch=read (every byte read once, MessageFormat.readAll) and touch=verify
    // (MessageFormat.patternMatches) over one cache-warm message.
    for size in [4 << 10, 64 << 10] {
        let label = "\(size >> 10) KiB"
        let message = patternedMessage(size: size, sequence: 7)
        let incoming = UnsafeRawBufferPointer(message)
        let configuration = Benchmark.Configuration(
            metrics: [.wallClock, .throughput, .mallocCountTotal, megabytesPerSecond],
            scalingFactor: size > 16 << 10 ? .one : .kilo,
            thresholds: [.wallClock: Tolerance.time, .throughput: Tolerance.rate, .mallocCountTotal: Tolerance.noAllocations,
                         megabytesPerSecond: Tolerance.rate])

        Benchmark("touch=read \(label)", configuration: configuration) { benchmark in
            let calls = benchmark.scaledIterations.count
            var sum: UInt64 = 0
            benchmark.startMeasurement()
            let start = MonotonicClock.now()
            for _ in 0..<calls {
                blackHole(incoming) // escapes the buffer each time, so the read cannot be hoisted out of the loop
                sum &+= MessageFormat.readAll(incoming)
            }
            let elapsed = MonotonicClock.now() - start
            benchmark.stopMeasurement()
            blackHole(sum)
            benchmark.measurement(megabytesPerSecond, Int(UInt64(calls * size) * 1000 / max(elapsed, 1)))
        }

        Benchmark("touch=verify \(label)", configuration: configuration) { benchmark in
            let calls = benchmark.scaledIterations.count
            var matched = 0
            benchmark.startMeasurement()
            let start = MonotonicClock.now()
            for _ in 0..<calls {
                blackHole(incoming)
                if MessageFormat.patternMatches(incoming, sequence: 7) { matched &+= 1 }
            }
            let elapsed = MonotonicClock.now() - start
            benchmark.stopMeasurement()
            if matched != calls { benchmark.error("pattern check failed on an unchanged message") }
            benchmark.measurement(megabytesPerSecond, Int(UInt64(calls * size) * 1000 / max(elapsed, 1)))
        }
    }
    // 5. A non-blocking read that finds nothing (EAGAIN), as every empty poll of `--wait poll` makes,
    // called through a function that is not inlined, as the endpoints call it. SystemCall's typed
    // `throws(Errno)` must allocate nothing; swift-system's own FileDescriptor.read throws untyped
    // and boxes the Errno (1 allocation per call), which is why the loops do not use it. If this
    // second one ever reads 0, swift-system's reads could replace SystemCall's.
    let emptyPipe = nonBlockingEmptyPipe()
    let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 64)
    let emptyReads: [(name: String, read: (Int32, UnsafeMutableRawBufferPointer) -> Int?)] = [
        ("SystemCall.retrying", readThroughSystemCall),
        ("swift-system FileDescriptor.read", { readThroughSwiftSystem(FileDescriptor(rawValue: $0), $1) }),
    ]
    for (name, read) in emptyReads {
        Benchmark("EAGAIN read via \(name)", configuration: .init(thresholds: [.mallocCountTotal: Tolerance.noAllocations])) { benchmark in
            var empty = 0
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                if read(emptyPipe, scratch) == nil { empty &+= 1 }
            }
            benchmark.stopMeasurement()
            if empty != benchmark.scaledIterations.count { benchmark.error("a read of an empty pipe did not report EAGAIN") }
        }
    }
}

/// The read end of a pipe nobody writes to, non-blocking.
func nonBlockingEmptyPipe() -> Int32 {
    var ends: [Int32] = [-1, -1]
    guard pipe(&ends) == 0, fcntl(ends[0], F_SETFL, O_NONBLOCK) == 0 else { fatalError("pipe: \(Errno(rawValue: errno))") }
    return ends[0]
}

/// Bytes read, or nil for EAGAIN.
@inline(never)
func readThroughSystemCall(_ descriptor: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Int? {
    do throws(Errno) {
        return try readOnce(descriptor, buffer)
    } catch .wouldBlock {
        return nil
    } catch {
        fatalError("read: \(error)")
    }
}

@inline(never)
func readOnce(_ descriptor: Int32, _ buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
    try SystemCall.retrying { read(descriptor, buffer.baseAddress, buffer.count) }
}

/// Bytes read, or nil for EAGAIN.
@inline(never)
func readThroughSwiftSystem(_ descriptor: FileDescriptor, _ buffer: UnsafeMutableRawBufferPointer) -> Int? {
    do {
        return try readOnce(descriptor, buffer)
    } catch Errno.wouldBlock {
        return nil
    } catch {
        fatalError("read: \(error)")
    }
}

@inline(never)
func readOnce(_ descriptor: FileDescriptor, _ buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    try descriptor.read(into: buffer)
}

