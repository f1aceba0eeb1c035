import Foundation
import IPCBench
import Testing

/// `ipcbench run`'s option rules, in-process (RunRequest): the defaults, and bad input refused with
/// what was wrong and what is allowed. CommandLineTests checks the same through the binary.
@Suite("Run options become a configuration, or a one-line reason")
struct RunRequestTests {
    static func reason(_ change: (inout RunRequest) -> Void) -> String? {
        var request = RunRequest()
        change(&request)
        do {
            _ = try request.configuration()
            return nil
        } catch {
            return (error as? RunInputError)?.description ?? "not a RunInputError: \(error)"
        }
    }

    @Test("The defaults: every mechanism, both modes, the size sweep, block, write/read policies")
    func defaults() throws {
        let configuration = try RunRequest().configuration()
        #expect(configuration.mechanisms.map(\.id) == MechanismRegistry.ids)
        #expect(configuration.modes == [.latency, .throughput])
        #expect(configuration.sizes == [16, 4096, 65536, 1 << 20])
        #expect(configuration.waits == [.block] && configuration.produce == .write && configuration.touch == .read)
        #expect(configuration.repetitions == 5 && configuration.pairCounts == [1] && configuration.clientCounts == [1])
        var quick = RunRequest()
        quick.quick = true
        #expect(try quick.configuration().sizes == [64, 65536])
    }

    @Test("Bad options are refused with the rule they broke")
    func badOptions() {
        let cases: [((inout RunRequest) -> Void, String)] = [
            ({ $0.sizes = "12" }, "--sizes: 12 is out of range"),
            ({ $0.sizes = "4Ki" }, "--sizes: '4Ki' is not a size"),
            ({ $0.mechanisms = "pipe,nope" }, "--mechanisms: unknown value 'nope'"),
            ({ $0.touch = "verify"; $0.produce = "header" }, "--touch verify checks the pattern the producer writes"),
            ({ $0.pairs = "2"; $0.clients = "2" }, "--pairs and --clients above 1 cannot be combined"),
            ({ $0.repetitions = 0 }, "--repetitions 0 is out of range; allowed: 1 to 1000"),
            ({ $0.spinPauses = "99" }, "--spin-pauses '99' is not a pause count"),
            ({ $0.rate = "fast" }, "--rate 'fast' is not a send rate"),
            ({ $0.remote = "nohost" }, "--remote 'nohost' is not HOST:PORT"),
        ]
        for (change, expected) in cases {
            let reason = Self.reason(change)
            #expect(reason?.contains(expected) == true, "expected '\(expected)', got \(reason ?? "no error")")
        }
    }

    @Test("--soak takes seconds or a number with s, m or h")
    func soak() throws {
        var request = RunRequest()
        #expect(try request.soakSeconds() == nil)
        request.soak = "10m"
        #expect(try request.soakSeconds() == 600)
        request.soak = "90"
        #expect(try request.soakSeconds() == 90)
        request.soak = "ten"
        #expect(throws: RunInputError.self) { try request.soakSeconds() }
    }
}

/// RunSession in-process: passes, the write failure that ends a run, and the metadata it closes.
@Suite("A run's passes and its closing metadata", .serialized)
struct RunSessionTests {
    static func configuration() throws -> RunConfiguration {
        var request = RunRequest()
        request.mechanisms = "pipe,fifo"
        request.sizes = "64"
        request.placements = "same-cpu"
        request.repetitions = 1
        request.messages = 200
        var configuration = try request.configuration()
        configuration.limits = TestSupport.limits
        return configuration
    }

    @Test("A result that cannot be written ends the run after that cell, and the metadata says failed")
    func writeFailureStops() throws {
        let configuration = try Self.configuration()
        var recorded = 0
        let session = RunSession(configuration: configuration)
        let summary = session.run(record: { _ in
            recorded += 1
            throw IPCError.setup("disk full")
        })
        #expect(recorded == 1 && summary.outcomes.count == 1 && summary.passes == 1)
        #expect(summary.writeFailure?.description.contains("disk full") == true)
        var metadata = RunMetadata(configuration: configuration, runID: "t", started: Date(), commandLine: [])
        session.complete(&metadata, with: summary)
        #expect(metadata.state == "failed" && metadata.cellsCompleted == 1 && metadata.soakPasses == nil)
    }

    @Test("A soak runs passes until its time is up, checking for leaks after each; one pass without it")
    func soakPasses() throws {
        let configuration = try Self.configuration()
        let once = RunSession(configuration: configuration).run(record: { _ in })
        #expect(once.passes == 1 && once.outcomes.count == 4 && once.failed.isEmpty && once.leaks.isEmpty && !once.ranking.isEmpty)
        // A pass takes about 0.3 s here; 3 s leaves room for a loaded machine to fit a second one.
        let soak = RunSession(configuration: configuration, soakSeconds: 3)
        var notes: [String] = []
        let summary = soak.run(record: { _ in }, note: { notes.append($0) })
        #expect(summary.passes >= 2 && summary.outcomes.count == 4 * summary.passes && summary.leaks.isEmpty, "\(notes)")
        #expect(summary.failed.isEmpty && summary.ranking.isEmpty)
        var metadata = RunMetadata(configuration: configuration, runID: "t", started: Date(), commandLine: [])
        soak.complete(&metadata, with: summary)
        #expect(metadata.state == "complete" && metadata.soakPasses == summary.passes && metadata.leakedObjects == [])
    }
}
