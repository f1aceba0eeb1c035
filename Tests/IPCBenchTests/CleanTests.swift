import Foundation
import Glibc
import IPCBench
import Testing

@Suite("Leftovers of crashed runs")
struct CleanTests {
    @Test("After SIGKILL of the parent, run warns about leftovers and clean removes them, marks the run's metadata killed, and leaves others' objects alone")
    func cleanRemovesCrashedRunLeftovers() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let environment = ["TMPDIR": scratch]
        let bystander = scratch + "/ipcbench-notapid-dir"
        try FileManager.default.createDirectory(atPath: bystander, withIntermediateDirectories: false)
        let foreignQueue = msgget(IPC_PRIVATE, IPC_CREAT | 0o600)
        #expect(foreignQueue >= 0)
        defer { msgctl(foreignQueue, IPC_RMID, nil) }

        var crashedPID: pid_t = 0
        _ = try TestSupport.runCLI(
            ["run", "--mechanisms", "fifo", "--sizes", "64", "--mode", "latency", "--duration", "5", "--repetitions", "1",
             "--out", scratch + "/crashed.csv"],
            environment: environment
        ) { pid in
            crashedPID = pid
            _ = TestSupport.waitFor(seconds: 10) { TestSupport.children(of: pid).count == 2 }
            let workers = TestSupport.children(of: pid).map(\.pid)
            kill(pid, SIGKILL)
            // PR_SET_PDEATHSIG takes the workers down with their parent.
            #expect(TestSupport.waitFor(seconds: 5) { workers.allSatisfy { kill($0, 0) != 0 } })
        }
        let workspace = TestSupport.entries(in: scratch).filter { $0.hasPrefix("ipcbench-\(crashedPID)-") && !$0.hasSuffix(".runlock") }
        #expect(workspace.count == 1, "the crashed run's workspace should remain: \(TestSupport.entries(in: scratch))")

        let warned = try TestSupport.runCLI(["run", "--quick", "--mechanisms", "pipe", "--sizes", "64", "--out", scratch + "/next.csv"], environment: environment)
        #expect(warned.status == 0)
        #expect(warned.stderr.contains("left by crashed earlier runs") && warned.stderr.contains("ipcbench clean"), "\(warned.stderr)")

        let dryRun = try TestSupport.runCLI(["clean", "--dry-run"], environment: environment)
        #expect(dryRun.stdout.contains("would remove temp directory") && dryRun.stdout.contains("ipcbench-\(crashedPID)-"))
        #expect(!TestSupport.entries(in: scratch).filter { $0.hasPrefix("ipcbench-\(crashedPID)-") }.isEmpty)

        let cleaned = try TestSupport.runCLI(["clean"], environment: environment)
        #expect(cleaned.status == 0, "\(cleaned.stdout)")
        #expect(cleaned.stdout.contains("removed temp directory"))
        // The killed run's metadata no longer claims it is running.
        #expect(cleaned.stdout.contains("marked \(scratch)/crashed.metadata.json as killed"), "\(cleaned.stdout)")
        let metadata = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch + "/crashed.metadata.json"))) as? [String: Any])
        #expect(metadata["state"] as? String == "killed" && (metadata["killed_note"] as? String)?.contains("ipcbench clean") == true, "\(metadata)")
        #expect(TestSupport.entries(in: scratch).filter { $0.hasPrefix("ipcbench-\(crashedPID)-") }.isEmpty)
        #expect(FileManager.default.fileExists(atPath: bystander))
        var info = msqid_ds()
        #expect(msgctl(foreignQueue, IPC_STAT, &info) == 0, "clean removed a queue that was not ipcbench's")
    }

    @Test("clean leaves a live run alone when its binary has another name: the run's lock is held")
    func renamedLiveRunIsLeftAlone() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let renamed = scratch + "/bench-renamed"
        try FileManager.default.copyItem(atPath: TestSupport.binary, toPath: renamed)
        let run = Process()
        run.executableURL = URL(fileURLWithPath: renamed)
        run.arguments = ["run", "--mechanisms", "shm-posix,fifo", "--variants", "in-place/semaphore,write/read", "--sizes", "64", "--mode", "latency", "--placements", "cross-cpu",
                         "--duration", "0.5", "--repetitions", "2", "--quiet", "--no-plots", "--out", scratch + "/live.csv"]
        run.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": scratch]) { $1 }
        run.standardOutput = FileHandle.nullDevice
        run.standardError = FileHandle.nullDevice
        try run.run()
        let pid = run.processIdentifier
        #expect(TestSupport.waitFor(seconds: 10) { TestSupport.children(of: pid).count == 2 })
        #expect(TestSupport.entries(in: scratch).contains { $0.hasPrefix("ipcbench-\(pid)-") && $0.hasSuffix(".runlock") })
        let cleaned = try TestSupport.runCLI(["clean"], environment: ["TMPDIR": scratch])
        #expect(!cleaned.stdout.contains("from run \(pid)"), "clean removed a live run's objects: \(cleaned.stdout)")
        run.waitUntilExit()
        #expect(run.terminationStatus == 0)
        let rows = try TestSupport.readCSV(scratch + "/live.csv")
        #expect(rows.count == 2 && rows.allSatisfy { $0["status"] == "ok" }, "\(rows.map { $0["status"] ?? "" })")
        #expect(!TestSupport.entries(in: scratch).contains { $0.hasSuffix(".runlock") }, "the run left its lock file")
    }

    @Test("Owner pids round-trip through names")
    func ownerTags() {
        let name = OwnedNames.posixName("to-consumer")
        #expect(OwnedNames.ownerPID(ofName: name) == getpid())
        #expect(OwnedNames.ownerPID(ofName: "ipcbench-test-abc") == nil)
        #expect(OwnedNames.ownerPID(ofName: "/other-123") == nil)
        #expect(OwnedNames.ownerPID(ofName: "ipcbench-0dtnnS") == nil)
        #expect(OwnedNames.ownerPID(ofName: "ipcbench-123abc") == nil)
        #expect(OwnedNames.ownerPID(ofName: "ipcbench-123-abc") == 123)
    }
}

@Suite("Soak")
struct SoakTests {
    @Test("A short soak loops the suite and reports no failure and no leak")
    func shortSoak() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let result = try TestSupport.runCLI(
            ["run", "--mechanisms", "pipe,unix-stream", "--sizes", "64", "--duration", "0.02", "--repetitions", "1",
             "--soak", "4s", "--out", scratch + "/soak.csv"],
            environment: ["TMPDIR": scratch])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("0 failed, 0 leaked objects"), "\(result.stdout)")
        let passes = result.stdout.firstMatch(of: /Soak: (\d+) passes/).flatMap { Int($0.1) } ?? 0
        #expect(passes >= 1)
        // Per pass, per mechanism: latency at cross-cpu and same-cpu, throughput at cross-cpu.
        #expect(try TestSupport.readCSV(scratch + "/soak.csv").count == passes * 6)
        // It loops until the soak time is up: it never stops sooner, so the run lasts at least 4 s
        // however fast this machine is (a single pass takes well under that on a free machine, so a soak
        // that ran one pass and stopped fails here). How many passes fit depends on the machine, so
        // the count is not bounded beyond being the one reported.
        let metadata = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch + "/soak.metadata.json"))) as? [String: Any])
        #expect(metadata["soak_passes"] as? Int == passes)
        let wall = try #require(metadata["wall_seconds"] as? Double, "\(metadata)")
        #expect(wall >= 4, "the soak stopped after \(wall) s (\(passes) passes), before its 4 s were up")
    }

    @Test("An object this process still holds is found as a leak")
    func detectsHeldObjects() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        setenv("TMPDIR", scratch, 1)
        defer { unsetenv("TMPDIR") }
        let workspace = try Workspace()
        #expect(Leftovers.heldByThisProcess().contains { $0.name == workspace.path })
        workspace.remove()
        #expect(!Leftovers.heldByThisProcess().contains { $0.name == workspace.path })
    }
}
