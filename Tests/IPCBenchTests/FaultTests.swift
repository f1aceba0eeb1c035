import Foundation
import Glibc
import IPCBench
import Testing

/// A worker that dies or hangs ends its cell as failed, with the reason, within a bounded time; the run
/// goes on; Ctrl-C ends the run cleanly. Nothing is left in the temp directory in any case.
@Suite("Faults end cells cleanly")
struct FaultTests {
    /// Runs two latency cells (pipe then fifo), applies `fault` to the first cell's worker of `role`,
    /// and returns the CLI result, the CSV rows and the wall time.
    func runWithFault(role: String, signal: Int32, cellTimeout: Double) throws -> (TestSupport.CommandResult, [[String: String]], Double, String) {
        let scratch = TestSupport.temporaryDirectory()
        let csv = scratch + "/out.csv"
        let started = Date()
        var injected = false
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--mechanisms", "pipe,fifo", "--sizes", "64", "--mode", "latency", "--duration", "3", "--repetitions", "1",
             "--cell-timeout", String(cellTimeout), "--out", csv],
            environment: ["TMPDIR": scratch]
        ) { pid in
            injected = TestSupport.waitFor(seconds: 10) {
                guard let worker = TestSupport.children(of: pid).first(where: { $0.commandLine.contains("\"role\":\"\(role)\"") }) else { return false }
                usleep(300_000) // well inside the timed loop
                return kill(worker.pid, signal) == 0
            }
        }
        #expect(injected, "could not find the \(role) worker")
        let rows = try TestSupport.readCSV(csv)
        return (result, rows, Date().timeIntervalSince(started), scratch)
    }

    @Test("A SIGKILLed consumer fails its cell with the reason; the next cell runs; nothing is left")
    func killedWorker() throws {
        let (result, rows, _, scratch) = try runWithFault(role: "consumer", signal: SIGKILL, cellTimeout: 30)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        #expect(result.status == 1, "\(result.stderr)")
        #expect(rows.count == 2)
        #expect(rows.first?["status"]?.contains("consumer was killed by SIGKILL") == true, "\(rows.first?["status"] ?? "")")
        #expect(rows.last?["mechanism"] == "fifo" && rows.last?["status"] == "ok", "\(rows.last?["status"] ?? "")")
        #expect(TestSupport.entries(in: scratch).sorted() == ["out.csv", "out.metadata.json"])
    }

    @Test("A stopped (SIGSTOP) producer ends its cell with a timeout within --cell-timeout")
    func hungWorker() throws {
        let (result, rows, wall, scratch) = try runWithFault(role: "producer", signal: SIGSTOP, cellTimeout: 2)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        #expect(result.status == 1, "\(result.stderr)")
        #expect(rows.first?["status"]?.contains("timeout") == true, "\(rows.first?["status"] ?? "")")
        #expect(rows.last?["status"] == "ok")
        #expect(wall < 20, "took \(wall) s")
        #expect(TestSupport.entries(in: scratch).sorted() == ["out.csv", "out.metadata.json"])
    }

    @Test("A consumer that exits early (status 0, no result) fails its cell with the reason; the next cell runs; exit 1")
    func workerExitsEarly() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let csv = scratch + "/out.csv"
        let started = Date()
        // The fault ends the latency cell's consumer 0.2 s into a 1 s timed loop, the producer waiting
        // for a reply; the throughput cell after it is not affected.
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--mechanisms", "pipe", "--sizes", "64", "--mode", "latency,throughput", "--duration", "1",
             "--repetitions", "1", "--cell-timeout", "30", "--inject-fault", "exit-early", "--out", csv],
            environment: ["TMPDIR": scratch])
        let wall = Date().timeIntervalSince(started)
        #expect(result.status == 1, "\(result.stderr)")
        let rows = try TestSupport.readCSV(csv)
        #expect(rows.count == 2)
        #expect(rows.first?["status"]?.hasPrefix("failed: consumer exited with status 0 during the timed loop") == true, "\(rows.first?["status"] ?? "")")
        #expect(rows.last?["mode"] == "throughput" && rows.last?["status"] == "ok", "\(rows.last?["status"] ?? "")")
        #expect(wall < 10, "took \(wall) s: the early exit was not noticed before the cell timeout")
        #expect(TestSupport.entries(in: scratch).sorted() == ["out.csv", "out.metadata.json"])
    }

    @Test("--fail-fast stops the run at the first failed cell")
    func failFast() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let csv = scratch + "/out.csv"
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--mechanisms", "pipe,fifo", "--sizes", "256", "--mode", "throughput",
             "--messages", "2000", "--touch", "verify", "--inject-fault", "corrupt", "--fail-fast", "--out", csv],
            environment: ["TMPDIR": scratch])
        #expect(result.status == 1)
        let rows = try TestSupport.readCSV(csv)
        #expect(rows.count == 1 && rows[0]["status"]?.hasPrefix("failed: ") == true, "\(rows)")
    }

    @Test("SIGTERM ends the run like SIGINT, with status 143")
    func terminatedRun() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let csv = scratch + "/results.csv"
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--mechanisms", "fifo", "--sizes", "64,128,256", "--mode", "latency",
             "--duration", "1", "--repetitions", "1", "--out", csv],
            environment: ["TMPDIR": scratch]
        ) { pid in
            _ = TestSupport.waitFor(seconds: 10) { TestSupport.children(of: pid).count == 2 }
            usleep(300_000)
            kill(pid, SIGTERM)
        }
        #expect(result.status == 143, "\(result.stderr)")
        let metadata = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch + "/metadata.json"))) as! [String: Any]
        #expect(metadata["state"] as? String == "interrupted" && metadata["interrupted_by"] as? String == "SIGTERM")
        #expect(TestSupport.entries(in: scratch).sorted() == ["metadata.json", "results.csv"])
    }

    @Test("SIGINT ends the run: workers gone, CSV well-formed with the completed cells, metadata interrupted, status 130")
    func interruptedRun() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let csv = scratch + "/results.csv"
        var workersAfter: [pid_t] = [1]
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--mechanisms", "pipe", "--sizes", "64,128,256,512,1K,2K", "--mode", "latency", "--duration", "0.5",
             "--repetitions", "1", "--back-to-back", "--out", csv],
            environment: ["TMPDIR": scratch]
        ) { pid in
            // Interrupt once the first row is written, in the middle of a later cell.
            _ = TestSupport.waitFor(seconds: 20) {
                ((try? String(contentsOfFile: csv, encoding: .utf8)) ?? "").split(separator: "\n").count >= 2
            }
            usleep(200_000)
            kill(pid, SIGINT)
            _ = TestSupport.waitFor(seconds: 10) { kill(pid, 0) != 0 || TestSupport.children(of: pid).isEmpty }
            workersAfter = TestSupport.children(of: pid).map(\.pid)
        }
        #expect(result.status == 130, "\(result.stderr)")
        #expect(workersAfter.isEmpty)
        let text = try String(contentsOfFile: csv, encoding: .utf8)
        #expect(text.hasSuffix("\n"))
        let rows = try TestSupport.readCSV(csv)
        #expect(rows.count >= 1 && rows.count < 6)
        #expect(rows.allSatisfy { $0["status"] == "ok" && $0.count == CSVReport.columns.count })
        let metadata = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch + "/metadata.json"))) as! [String: Any]
        #expect(metadata["state"] as? String == "interrupted")
        #expect(metadata["interrupted_by"] as? String == "SIGINT")
        #expect(TestSupport.entries(in: scratch).sorted() == ["metadata.json", "results.csv"])
    }

    @Test("SIGINT in a later round of repetitions: every cell that completed one is written, with the repetitions it completed")
    func interruptedRounds() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let csv = scratch + "/results.csv"
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--mechanisms", "pipe", "--sizes", "64,128,256", "--mode", "latency", "--duration", "0.5",
             "--repetitions", "3", "--out", csv],
            environment: ["TMPDIR": scratch]
        ) { pid in
            // Round 1 takes about 3 × 0.5 s: this lands in round 2 on most machines, in round 1 on a slow one.
            usleep(2_400_000)
            kill(pid, SIGINT)
        }
        #expect(result.status == 130, "\(result.stderr)")
        let rows = try TestSupport.readCSV(csv)
        let repetitions = rows.compactMap { Int($0["repetitions"] ?? "") }
        #expect(rows.count >= 1 && rows.count <= 3 && repetitions.count == rows.count, "\(rows.count) rows")
        #expect(rows.allSatisfy { $0["status"] == "ok" }, "\(rows.map { $0["status"] ?? "" })")
        #expect(repetitions.allSatisfy { $0 >= 1 } && repetitions.reduce(0, +) < 9, "repetitions per row: \(repetitions)")
        #expect(rows.allSatisfy { ($0["headline_per_repetition"] ?? "").split(separator: " ").count == Int($0["repetitions"] ?? "") })
    }
}
