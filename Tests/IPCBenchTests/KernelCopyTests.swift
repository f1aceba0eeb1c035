import Foundation
import Glibc
import IPCBench
import Testing

/// vmsplice, cma (process_vm_readv) and memfd move verified data between real processes. Their
/// producers reuse a ring of buffers that the consumer reads where they lie (or the pipe references),
/// and every message carries a different pattern, so a buffer rewritten too early shows up as a
/// corrupt message.
@Suite("Kernel copy paths: vmsplice, cma, memfd")
struct KernelCopyTests {
    static let mechanisms = ["vmsplice", "cma", "memfd"]

    func expectClean(_ outcomes: [CellOutcome], messages: UInt64, _ mechanism: String) {
        for outcome in outcomes {
            let label = "\(mechanism) \(outcome.cell.variant) \(outcome.cell.mode) \(outcome.cell.messageBytes)"
            #expect(outcome.status == .ok, "\(label): \(outcome.status.text)")
            #expect(outcome.messages == messages, "\(label)")
            #expect(outcome.lost == 0 && outcome.reordered == 0 && outcome.corrupt == 0,
                    "\(label): lost \(outcome.lost), reordered \(outcome.reordered), corrupt \(outcome.corrupt)")
            switch outcome.cell.mode {
            case .latency: #expect((outcome.halfRoundTrip?.p50 ?? 0) > 0, "\(label)")
            case .throughput: #expect((outcome.bytesPerSecond ?? 0) > 0, "\(label)")
            }
        }
    }

    /// Cancels the current test case, visibly (reported as skipped with the reason), when `mechanism`
    /// cannot run here. Only cma can be unavailable (Yama ptrace_scope ≥ 2, seccomp);
    /// `crossMemoryAvailability` checks that the reason is right.
    static func skipIfUnavailable(_ mechanism: String) throws {
        if let reason = MechanismRegistry.mechanism(id: mechanism)!.unavailableReason() {
            try Test.cancel("skipped: \(mechanism) is unavailable here: \(reason)")
        }
    }

    @Test("10,000 messages per cell in both modes, every sequence and payload verified", arguments: mechanisms)
    func movesVerifiedMessages(mechanism: String) throws {
        if let reason = MechanismRegistry.mechanism(id: mechanism)!.unavailableReason() {
            // Then every cell says why, and nothing else can be checked: the case is reported skipped.
            let outcomes = TestSupport.run([mechanism], sizes: [64], messages: 100)
            #expect(!outcomes.isEmpty && outcomes.allSatisfy { $0.status == .unavailable(reason) })
            try Self.skipIfUnavailable(mechanism)
        }
        let outcomes = TestSupport.run([mechanism], sizes: [16, 4096])
        #expect(outcomes.count == 4)
        expectClean(outcomes, messages: 10_000, mechanism)
    }

    /// Messages as large as the vmsplice ring's whole slots and pipe (1 MiB), and a size that is not a
    /// whole number of pages: fewer of them, to keep the debug-build test short.
    @Test("Large and odd-sized messages, verified", arguments: mechanisms)
    func movesLargeMessages(mechanism: String) throws {
        try Self.skipIfUnavailable(mechanism)
        let outcomes = TestSupport.run([mechanism], sizes: [65536, 300_001, 1 << 20], messages: 200)
        #expect(outcomes.count == 6)
        expectClean(outcomes, messages: 200, mechanism)
    }

    @Test("vmsplice's optional write/read-maxpipe variant moves verified messages through the enlarged pipe")
    func writeReadThroughEnlargedPipe() {
        let configuration = RunConfiguration(
            mechanisms: [VmsplicePipeMechanism()], modes: Mode.allCases, variants: [VmsplicePipeMechanism.writeVariant],
            sizes: [16, 4096], touch: .verify, placement: TestSupport.placement, repetitions: 1, durationSeconds: 0,
            maximumMessages: 10_000, warmupMessages: 100, limits: TestSupport.limits)
        let outcomes = SuiteRunner.run(configuration) { _, _, _ in }
        #expect(outcomes.count == 4)
        #expect(outcomes.allSatisfy { $0.cell.variant == VmsplicePipeMechanism.writeVariant && $0.cell.copies == 2 })
        expectClean(outcomes, messages: 10_000, "vmsplice")
    }

    @Test("Copy counts and variants as documented")
    func copyCounts() {
        #expect(VmsplicePipeMechanism().copies(for: VmsplicePipeMechanism.vmspliceVariant) == 1)
        #expect(CrossMemoryAttachMechanism().copies(for: CrossMemoryAttachMechanism.pullVariant) == 1)
        #expect(MemfdHandoffMechanism().copies(for: MemfdHandoffMechanism.inPlaceVariant) == 0)
        for mode in Mode.allCases {
            #expect(VmsplicePipeMechanism().variants(for: mode) == ["vmsplice/read"])
            #expect(VmsplicePipeMechanism().optionalVariants(for: mode) == ["write/read-maxpipe"])
            #expect(CrossMemoryAttachMechanism().variants(for: mode) == ["process_vm_readv/pipe"])
            #expect(MemfdHandoffMechanism().variants(for: mode) == ["scm-rights/in-place"])
        }
    }

    @Test("cma's availability matches what this system allows")
    func crossMemoryAvailability() {
        let reason = CrossMemoryAttachMechanism().unavailableReason()
        if let scope = (try? String(contentsOfFile: "/proc/sys/kernel/yama/ptrace_scope", encoding: .utf8))
            .flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }), scope >= 3 {
            #expect(reason != nil)
        } else if reason != nil {
            // Yama 2 without CAP_SYS_PTRACE, or the call is filtered: the reason names the call or Yama.
            #expect(reason!.contains("process_vm_readv") || reason!.contains("ptrace_scope"))
        }
    }

    @Test("The CLI runs all three and leaves nothing in TMPDIR")
    func leavesNothingBehind() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let csv = scratch + "/out.csv"
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--mechanisms", Self.mechanisms.joined(separator: ","), "--sizes", "4K", "--messages", "2000",
             "--repetitions", "1", "--touch", "verify", "--quiet", "--out", csv],
            environment: ["TMPDIR": scratch])
        let rows = try TestSupport.readCSV(csv)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(rows.count == 6)
        for row in rows where !(row["status"] ?? "").hasPrefix("unavailable") {
            #expect(row["status"] == "ok", "\(row["mechanism"] ?? "") \(row["mode"] ?? ""): \(row["status"] ?? "")")
        }
        #expect(TestSupport.entries(in: scratch).sorted() == ["out.csv", "out.metadata.json"])
    }

    @Test("A SIGKILLed worker mid-run fails the cell, promptly, and leaves nothing",
          arguments: mechanisms, [Role.producer, Role.consumer])
    func killedWorker(mechanism: String, role: Role) throws {
        try Self.skipIfUnavailable(mechanism)
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let csv = scratch + "/out.csv"
        let started = Date()
        var killed = false
        // A long loop, so the kill lands inside it even if start-up is slow here, and "promptly" can
        // be told apart from "when the loop ended on its own" without a tight time bound.
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--mechanisms", mechanism, "--sizes", "64K", "--mode", "throughput", "--duration", "60",
             "--repetitions", "1", "--cell-timeout", "30", "--quiet", "--out", csv],
            environment: ["TMPDIR": scratch]
        ) { pid in
            killed = TestSupport.waitFor(seconds: 10) {
                guard let worker = TestSupport.children(of: pid).first(where: { $0.commandLine.contains("\"role\":\"\(role.rawValue)\"") })
                else { return false }
                usleep(500_000)  // inside the timed loop
                return kill(worker.pid, SIGKILL) == 0
            }
        }
        let wall = Date().timeIntervalSince(started)
        #expect(killed, "could not find the \(role) worker")
        #expect(result.status == 1, "\(result.stderr)")
        let rows = try TestSupport.readCSV(csv)
        #expect(rows.count == 1)
        // The cell failed because of the kill (not a timeout, nor the survivor's loop ending on its own)...
        let status = rows.first?["status"] ?? ""
        #expect(status.hasPrefix("failed: ") && status.contains("\(role.rawValue) was killed by SIGKILL"), "\(status)")
        // ...and was ended by it: a hang guard only, far above any start-up time. A harness that waited
        // for the 60 s loop (or the 60 + 30 s cell deadline) instead of noticing the death takes longer.
        #expect(wall < 55, "took \(wall) s: the run waited for the loop instead of ending at the kill")
        #expect(TestSupport.entries(in: scratch).sorted() == ["out.csv", "out.metadata.json"])
    }
}
