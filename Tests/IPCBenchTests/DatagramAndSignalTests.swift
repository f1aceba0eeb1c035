import Foundation
import Glibc
import IPCBench
import Testing

/// UNIX datagram and sequenced-packet sockets, UDP and real-time signals: each moves 10,000 verified
/// messages per cell between real processes in both modes; UDP survives (and reports) loss; sizes
/// over a limit are refused, never truncated; a datagram of the wrong length is an error; nothing
/// is left in the temporary directory.
@Suite("Datagram sockets and signals move real data, survive loss and refuse what they cannot carry", .serialized)
struct DatagramAndSignalTests {
    static func expectClean(_ outcome: CellOutcome, messages: UInt64 = 10_000) {
        let label = "\(outcome.cell.mechanism.id) \(outcome.cell.mode) \(outcome.cell.messageBytes)"
        #expect(outcome.status == .ok, "\(label): \(outcome.status.text)")
        #expect(outcome.messages == messages, "\(label)")
        #expect(outcome.lost == 0 && outcome.reordered == 0 && outcome.corrupt == 0, "\(label): \(outcome.lost) lost")
        #expect(outcome.cell.copies == 2, "\(label)")
    }

    @Test("UNIX datagram and seqpacket: 10,000 verified messages per cell", arguments: ["unix-dgram", "unix-seqpacket"])
    func unixSocketsMoveVerifiedMessages(mechanism: String) throws {
        let outcomes = TestSupport.run([mechanism], sizes: [16, 1000, 8192])
        #expect(outcomes.count == 6)
        for outcome in outcomes {
            Self.expectClean(outcome)
            if outcome.cell.mode == .latency {
                let oneWay = try #require(outcome.oneWay)
                #expect(oneWay.min > 0 && oneWay.p50 >= oneWay.min)
            } else {
                #expect((outcome.bytesPerSecond ?? 0) > 0)
            }
        }
    }

    @Test("Large datagrams are carried whole: UNIX beyond the default send buffer (212,960 bytes), UDP at 65,507")
    func largeDatagramsAreCarriedWhole() throws {
        // Fewer messages: these sizes are about the limits, not the counts (verified payloads are slow in debug builds).
        let limit = try #require(MechanismRegistry.mechanism(id: "unix-dgram")?.messageLimit())
        for outcome in TestSupport.run(["unix-dgram", "unix-seqpacket"], sizes: [min(300_000, limit.bytes)], messages: 200) {
            Self.expectClean(outcome, messages: 200)
        }
        for outcome in TestSupport.run(["udp"], sizes: [65_507], messages: 500) {
            #expect(outcome.status == .ok, "\(outcome.cell.mode): \(outcome.status.text)")
            #expect(outcome.reordered == 0 && outcome.corrupt == 0)
            #expect(outcome.messages > 0 && outcome.messages + outcome.lost >= 500, "\(outcome.messages) + \(outcome.lost)")
        }
    }

    @Test("UDP: 10,000 verified messages per cell")
    func udpMovesVerifiedMessages() throws {
        let outcomes = TestSupport.run(["udp"], sizes: [16, 1024, 8192])
        #expect(outcomes.count == 6)
        for outcome in outcomes {
            let label = "udp \(outcome.cell.mode) \(outcome.cell.messageBytes)"
            #expect(outcome.status == .ok, "\(label): \(outcome.status.text)")
            #expect(outcome.reordered == 0 && outcome.corrupt == 0, "\(label)")
            switch outcome.cell.mode {
            case .latency:
                // Every round trip completes; a retransmission (only expected under heavy load) is reported as lost.
                #expect(outcome.messages == 10_000, "\(label)")
                #expect(outcome.lost < 100, "\(label): \(outcome.lost) lost")
                #expect(try #require(outcome.oneWay).p50 > 0)
            case .throughput:
                // Loss is allowed but accounted for: every timed message either arrived or is counted lost.
                #expect(outcome.messages > 0 && outcome.messages <= 10_000, "\(label)")
                #expect(outcome.messages + outcome.lost >= 10_000, "\(label): \(outcome.messages) + \(outcome.lost) lost")
            }
        }
    }

    @Test("UDP streaming into a minimal receive buffer loses datagrams, reports them and still ends", arguments: [16, 1024])
    func udpSurvivesHeavyLoss(size: Int) throws {
        let configuration = RunConfiguration(
            mechanisms: [UDPMechanism()], modes: Mode.allCases, variants: ["small-rcvbuf"], sizes: [size], touch: .verify,
            placement: TestSupport.placement, repetitions: 1, durationSeconds: 0, maximumMessages: 10_000, warmupMessages: 100,
            limits: TestSupport.limits)
        let outcomes = SuiteRunner.run(configuration) { _, _, _ in }
        try #require(outcomes.count == 2)
        let latency = outcomes[0], throughput = outcomes[1]
        #expect(latency.status == .ok && latency.messages == 10_000, "\(latency.status.text)")
        #expect(throughput.status == .ok, "\(throughput.status.text)")
        #expect(throughput.lost > 0, "a burst of 10,100 datagrams into a ~4 KiB receive buffer lost nothing")
        #expect(throughput.messages > 0 && throughput.messages + throughput.lost >= 10_000, "\(throughput.messages) + \(throughput.lost)")
        #expect(throughput.reordered == 0 && throughput.corrupt == 0)
    }

    @Test("UDP recovers from lost pings, answers, end markers and acknowledgements, and counts them, however it waits",
          arguments: Mode.allCases, WaitStrategy.readinessBased)
    func udpRecoversFromInjectedLoss(mode: Mode, wait: WaitStrategy) throws {
        // The drop fault makes each side lose every 499th datagram and the first end marker and acknowledgement.
        let outcome = TestSupport.run(["udp"], modes: [mode], sizes: [256], fault: .drop, waits: [wait])[0]
        #expect(outcome.status == .ok, "\(outcome.status.text)")
        #expect(outcome.lost > 0 && outcome.reordered == 0 && outcome.corrupt == 0, "\(outcome.lost) lost")
        if mode == .latency {
            #expect(outcome.messages == 10_000)
            // Pings and answers are each dropped about every 499th datagram: ~40 retransmissions.
            #expect(outcome.lost >= 30 && outcome.lost <= 60, "\(outcome.lost) lost")
            #expect(try #require(outcome.halfRoundTrip).max >= 10_000_000, "a lost datagram costs a 20 ms retransmission wait")
        } else {
            #expect(outcome.messages + outcome.lost >= 10_000, "\(outcome.messages) + \(outcome.lost)")
        }
    }

    @Test("Real-time signals: 10,000 sequence numbers per cell in both modes, no invented one-way delay")
    func signalsCarrySequenceNumbers() throws {
        let outcomes = TestSupport.run(["signal"], sizes: [16])
        #expect(outcomes.count == 2)
        for outcome in outcomes {
            Self.expectClean(outcome)
            #expect(outcome.cell.variant == "sigqueue/sigwaitinfo (8-byte value)")
            #expect(outcome.oneWay == nil, "a signal cannot carry the send time, so no one-way delay may be reported")
            if outcome.cell.mode == .latency {
                #expect(try #require(outcome.halfRoundTrip).p50 > 0)
            } else {
                #expect((outcome.messagesPerSecond ?? 0) > 0)
            }
        }
    }

    @Test("A size over a limit is an unavailable cell naming the limit in a sweep")
    func oversizedCellsAreUnavailable() throws {
        let outcomes = TestSupport.run(["udp", "signal"], modes: [.latency], sizes: [16, 65_508], messages: 200)
        try #require(outcomes.count == 4)
        #expect(outcomes[0].status == .ok && outcomes[2].status == .ok, "\(outcomes[0].status.text); \(outcomes[2].status.text)")
        for (outcome, limit) in [(outcomes[1], "65507"), (outcomes[3], "16 bytes")] {
            guard case let .unavailable(reason) = outcome.status else {
                Issue.record("\(outcome.cell.mechanism.id) at 65,508 bytes gave \(outcome.status.text)")
                continue
            }
            #expect(reason.contains(limit), "\(reason)")
        }
        #expect(outcomes[3].status.text.contains("sigval"))

        let limit = try #require(UnixDatagramMechanism(.datagram).messageLimit())
        #expect(limit.bytes > 212_960, "SO_SNDBUF is raised to net.core.wmem_max: \(limit.source)")
        let oversized = TestSupport.run(["unix-dgram", "unix-seqpacket"], modes: [.throughput], sizes: [limit.bytes + 1], messages: 10)
        for outcome in oversized {
            #expect(outcome.status.text.hasPrefix("unavailable: ") && outcome.status.text.contains(String(limit.bytes)), "\(outcome.status.text)")
        }
    }

    @Test("An explicit UDP size over 65,507 bytes exits 2 naming the limit")
    func explicitOversizeIsRefused() throws {
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try TestSupport.runCLI(
            ["run", "--mechanisms", "udp", "--sizes", "64K", "--out", directory + "/r.csv", "--quiet"], environment: ["TMPDIR": directory])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("65507"), "\(result.stderr)")
        #expect(TestSupport.entries(in: directory).isEmpty, "\(TestSupport.entries(in: directory))")
    }

    @Test("A CLI run of all four leaves nothing in TMPDIR and writes empty one-way columns for signals")
    func cliRunLeavesNothingBehind() throws {
        let scratch = TestSupport.temporaryDirectory()
        let output = TestSupport.temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(atPath: scratch)
            try? FileManager.default.removeItem(atPath: output)
        }
        let csv = output + "/r.csv"
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--mechanisms", "unix-dgram,unix-seqpacket,udp,signal", "--sizes", "16,1K", "--messages", "2000",
             "--repetitions", "1", "--touch", "verify", "--out", csv, "--quiet"],
            environment: ["TMPDIR": scratch])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try TestSupport.readCSV(csv)
        #expect(rows.count == 16)
        for row in rows {
            let label = "\(row["mechanism"]!) \(row["mode"]!) \(row["message_bytes"]!)"
            if row["mechanism"] == "signal", row["message_bytes"] == "1024" {
                #expect(row["status"]?.hasPrefix("unavailable: ") == true, "\(label): \(row["status"]!)")
                continue
            }
            #expect(row["status"] == "ok", "\(label): \(row["status"]!)")
            if row["mode"] == "latency" {
                let oneWay = row["one_way_p50_ns"] ?? ""
                #expect(row["mechanism"] == "signal" ? oneWay.isEmpty : (Double(oneWay) ?? 0) > 0, "\(label): one-way '\(oneWay)'")
            }
        }
        #expect(TestSupport.entries(in: scratch).isEmpty, "left behind: \(TestSupport.entries(in: scratch))")
    }

    @Test("A datagram of the wrong length is an error, never truncated or padded")
    func wrongLengthDatagramIsAnError() throws {
        var pair: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0, &pair) == 0)
        defer { close(pair[0]) }
        let receiver = try DatagramEndpoint(descriptor: pair[1], options: EndpointOptions(mode: .latency, messageBytes: 64, variant: ""), connectsToFirstSender: false, zeroLengthMeansClosed: false)
        defer { receiver.close() }
        let bytes = [UInt8](repeating: 7, count: 65)
        for length in [65, 63, 64] {
            #expect(bytes.withUnsafeBytes { send(pair[0], $0.baseAddress, length, 0) } == length)
        }
        #expect(throws: IPCError.self) { _ = try receiver.receive(size: 64) { _ in } }
        #expect(throws: IPCError.self) { _ = try receiver.receive(size: 64) { _ in } }
        var seen = 0
        #expect(try receiver.receive(size: 64) { seen = $0.count })
        #expect(seen == 64)
    }

    @Test("A SOCK_SEQPACKET peer's close ends the stream cleanly")
    func sequencedPacketCloseIsEndOfStream() throws {
        var pair: [Int32] = [-1, -1]
        try #require(socketpair(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue), 0, &pair) == 0)
        let receiver = try DatagramEndpoint(descriptor: pair[1], options: EndpointOptions(mode: .latency, messageBytes: 64, variant: ""), connectsToFirstSender: false, zeroLengthMeansClosed: true)
        defer { receiver.close() }
        close(pair[0])
        #expect(try receiver.receive(size: 64) { _ in } == false)
    }
}
