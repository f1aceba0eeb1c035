import IPCBench
import Testing

/// Every stream mechanism moves 10,000 verified messages per cell between real processes, at several
/// sizes, in both modes.
@Suite("Stream mechanisms move real data between processes")
struct StreamMechanismTests {
    @Test("10,000 messages per cell, every sequence and payload verified", arguments: ["pipe", "fifo", "unix-stream", "tcp"])
    func movesVerifiedMessages(mechanism: String) throws {
        let outcomes = TestSupport.run([mechanism], sizes: [16, 100, 4096])
        #expect(outcomes.count == 6)
        for outcome in outcomes {
            let label = "\(mechanism) \(outcome.cell.mode) \(outcome.cell.messageBytes)"
            #expect(outcome.status == .ok, "\(label): \(outcome.status.text)")
            #expect(outcome.messages == 10_000, "\(label)")
            #expect(outcome.lost == 0 && outcome.reordered == 0 && outcome.corrupt == 0, "\(label)")
            switch outcome.cell.mode {
            case .latency:
                let oneWay = try #require(outcome.oneWay, "\(label)")
                let half = try #require(outcome.halfRoundTrip, "\(label)")
                #expect(oneWay.min > 0 && oneWay.p50 >= oneWay.min && oneWay.max >= oneWay.p99, "\(label)")
                #expect(half.p50 > 0, "\(label)")
            case .throughput:
                #expect((outcome.bytesPerSecond ?? 0) > 0, "\(label)")
                #expect((outcome.messagesPerSecond ?? 0) > 0, "\(label)")
            }
        }
    }

    @Test("Large messages (64 KiB, 1 MiB, an odd 300,001 bytes) arrive whole and verified", arguments: ["pipe", "fifo", "unix-stream", "tcp"])
    func movesLargeMessages(mechanism: String) {
        let outcomes = TestSupport.run([mechanism], sizes: [65536, 300_001, 1 << 20], messages: 300)
        #expect(outcomes.count == 6)
        for outcome in outcomes {
            #expect(outcome.status == .ok && outcome.messages == 300 && outcome.corrupt == 0, "\(mechanism) \(outcome.cell.mode) \(outcome.cell.messageBytes): \(outcome.status.text)")
        }
    }

    /// The data faults; exit-early ends a worker instead (FaultTests).
    @Test("Injected faults are detected and fail the cell", arguments: [InjectedFault.drop, .reorder, .corrupt])
    func detectsInjectedFaults(fault: InjectedFault) {
        let outcomes = TestSupport.run(["pipe"], modes: [.throughput], sizes: [256], messages: 2_000, fault: fault)
        let outcome = outcomes[0]
        guard case let .failed(reason) = outcome.status else {
            Issue.record("fault \(fault) was not detected: \(outcome.status.text)")
            return
        }
        switch fault {
        case .drop: #expect(outcome.lost == 1, "\(reason)")
        case .reorder: #expect(outcome.reordered == 1 && outcome.lost == 0, "\(reason)")
        case .corrupt: #expect(outcome.corrupt == 1, "\(reason)")
        case .exitEarly, .stall, .slow: Issue.record("\(fault) is not a data fault")
        }
    }

    @Test("Both workers run on the CPUs they were pinned to")
    func pinsWorkers() throws {
        let cpus = Affinity.allowedCPUs()
        let placement = Placement(producerCPU: cpus.first!, consumerCPU: cpus.last!)
        let outcome = TestSupport.run(["pipe"], modes: [.latency], sizes: [64], messages: 500, placement: placement)[0]
        #expect(outcome.status == .ok, "\(outcome.status.text)")
        #expect(outcome.producerCPUSeen == cpus.first && outcome.consumerCPUSeen == cpus.last)
    }
}
