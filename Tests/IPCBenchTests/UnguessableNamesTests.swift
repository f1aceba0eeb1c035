import Foundation
import Glibc
import IPCBench
import Testing

/// Issue 17, item 8: a local user who creates the names and System V keys a run is about to use
/// cannot fail its cells, and the run never opens or removes that user's objects.
@Suite("Names and keys are unguessable")
struct UnguessableNamesTests {
    /// Run as another user, creates (`create FIRST COUNT`) or removes (`remove FIRST COUNT`) every
    /// object the earlier, pid-derived scheme would have used for runs with pids FIRST ..< FIRST+COUNT:
    /// System V keys `0x7A << 24 | pid << 2 | slot` and POSIX shared memory `/ipcbench-<pid>-0`.
    static let squatter = #"""
        import ctypes, os, sys
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
        action, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        IPC_CREAT, IPC_EXCL, IPC_RMID = 0o1000, 0o2000, 0
        made = 0
        for pid in range(first, first + count):
            for slot in range(4):
                key = (0x7A << 24) | ((pid & 0x3FFFFF) << 2) | slot
                if action == "create":
                    made += libc.msgget(key, IPC_CREAT | IPC_EXCL | 0o600) >= 0
                    made += libc.shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0o600) >= 0
                    made += libc.semget(key, 1, IPC_CREAT | IPC_EXCL | 0o600) >= 0
                else:
                    for get, remove in ((lambda: libc.msgget(key, 0), libc.msgctl), (lambda: libc.shmget(key, 0, 0), libc.shmctl), (lambda: libc.semget(key, 0, 0), libc.semctl)):
                        ident = get()
                        if ident >= 0:
                            remove(ident, IPC_RMID, None) if remove is not libc.semctl else remove(ident, 0, IPC_RMID)
                            made += 1
            name = ("/ipcbench-%d-0" % pid).encode()
            if action == "create":
                fd = libc.shm_open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
                if fd >= 0:
                    made += 1
                    os.close(fd)
            else:
                made += libc.shm_unlink(name) == 0
        print(made)
        """#

    static func squat(_ action: String, first: Int, count: Int, uid: uid_t, scratch: String) throws -> Int {
        let script = scratch + "/squatter.py"
        try squatter.write(toFile: script, atomically: false, encoding: .utf8)
        chmod(script, 0o644)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try SignalAndProbeTests.tool("setpriv"))
        process.arguments = ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "--", "/usr/bin/python3", "-I", script, action, String(first), String(count)]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    @Test("Another user holding every name and key the old pid-derived scheme would use fails no cell and loses no object")
    func squattedNamesFailNoCell() throws {
        guard geteuid() == 0 else { try Test.cancel("needs root to act as a second user") }
        let uid = try #require(SignalAndProbeTests.idleUID(), "no uid without processes to act as the other user")
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try #require(chmod(scratch, 0o755) == 0)
        // The run's pid will follow the last one handed out within a few: hold the names of the next 200.
        let first = (Int(SystemFacts.readWhole("/proc/sys/kernel/ns_last_pid")?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0) + 1
        let count = 200
        let made = try Self.squat("create", first: first, count: count, uid: uid, scratch: scratch)
        defer { _ = try? Self.squat("remove", first: first, count: count, uid: uid, scratch: scratch) }
        #expect(made == count * 13, "the other user could not create every object (\(made))")

        var runPID: pid_t = 0
        let result = try TestSupport.runCLI(
            ["run", "--mechanisms", "sysv-msg,shm-sysv,shm-posix,posix-mq", "--sizes", "64", "--mode", "latency", "--placements", "cross-cpu",
             "--repetitions", "1", "--messages", "200", "--cell-timeout", "20", "--quiet", "--out", scratch + "/r.csv"],
            environment: ["TMPDIR": scratch]
        ) { runPID = $0 }
        #expect((first..<(first + count)).contains(Int(runPID)), "the run's pid \(runPID) fell outside the names held; the test proves nothing")
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try TestSupport.readCSV(scratch + "/r.csv")
        #expect(!rows.isEmpty && rows.allSatisfy { $0["status"] == "ok" }, "\(rows.map { "\($0["mechanism"] ?? "") \($0["status"] ?? "")" })")
        // Nothing of the other user's was opened and removed in the run's place.
        let remaining = try Self.squat("remove", first: first, count: count, uid: uid, scratch: scratch)
        #expect(remaining == made, "the run removed \(made - remaining) of the other user's objects")
    }

    @Test("Names carry the creating pid and 64 random bits; System V keys carry the tag and 24 random bits")
    func namesAndKeys() throws {
        let name = OwnedNames.posixName("to-consumer")
        #expect(OwnedNames.ownerPID(ofName: name) == getpid())
        #expect(name.wholeMatch(of: /\/ipcbench-\d+-[0-9a-f]{16}-to-consumer/) != nil, "\(name)")
        #expect(Set((0..<100).map { _ in OwnedNames.posixName("x") }).count == 100)

        let workspace = try Workspace()
        var keys: [key_t] = []
        for _ in 0..<8 {
            var drawn: key_t = 0
            let id = try OwnedNames.createSysV(ledger: workspace.path) { key, flags in
                drawn = key
                return msgget(key, flags)
            }
            try #require(id >= 0)
            defer { msgctl(id, IPC_RMID, nil) }
            #expect(OwnedNames.isTagged(sysVKey: drawn))
            keys.append(drawn)
            // Between creating and removing, the object is this process's (the soak's leak check).
            #expect(Leftovers.heldByThisProcess().contains { $0.kind == .sysVMessageQueue && $0.name == String(id) })
        }
        #expect(Set(keys).count == 8)
        #expect(!OwnedNames.isTagged(sysVKey: 0x1234_5678) && !OwnedNames.isTagged(sysVKey: IPC_PRIVATE))
        // The ledger lists every key, written before the object was created.
        let ledger = try String(contentsOfFile: workspace.path + "/" + OwnedNames.sysVLedgerName, encoding: .utf8)
        #expect(ledger.split(separator: "\n").compactMap { UInt32($0, radix: 16).map { key_t(bitPattern: $0) } } == keys)
    }

    @Test("After SIGKILL of the parent, clean removes its System V objects through the cell directory's ledger, and reports a tagged object nobody lists without removing it")
    func cleanFindsSysVThroughLedger() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let environment = ["TMPDIR": scratch]
        // A tagged queue of this user that no ledger lists (as an older ipcbench would leave).
        var stray: Int32 = -1
        for low in Int32(1)...Int32(64) where stray < 0 { stray = msgget(0x7A << 24 | 0xEEE000 | low, IPC_CREAT | IPC_EXCL | 0o600) }
        try #require(stray >= 0)
        defer { msgctl(stray, IPC_RMID, nil) }

        var crashedPID: pid_t = 0
        var queues: [Int32] = []
        _ = try TestSupport.runCLI(
            ["run", "--mechanisms", "sysv-msg", "--sizes", "64", "--mode", "latency", "--duration", "5", "--repetitions", "1",
             "--placements", "cross-cpu", "--out", scratch + "/crashed.csv"],
            environment: environment
        ) { pid in
            crashedPID = pid
            _ = TestSupport.waitFor(seconds: 10) { TestSupport.children(of: pid).count == 2 }
            let workspace = TestSupport.entries(in: scratch).first { $0.hasPrefix("ipcbench-\(pid)-") && !$0.hasSuffix(".runlock") }
            let ledger = workspace.flatMap { try? String(contentsOfFile: scratch + "/" + $0 + "/" + OwnedNames.sysVLedgerName, encoding: .utf8) } ?? ""
            let keys = Set(ledger.split(separator: "\n").compactMap { UInt32($0, radix: 16).map { key_t(bitPattern: $0) } })
            queues = keys.map { msgget($0, 0) }.filter { $0 >= 0 }
            kill(pid, SIGKILL)
        }
        #expect(queues.count == 2, "the run's two queues were not found through its ledger")
        _ = TestSupport.waitFor(seconds: 5) { TestSupport.children(of: crashedPID).isEmpty }

        let dryRun = try TestSupport.runCLI(["clean", "--dry-run"], environment: environment)
        for queue in queues {
            #expect(dryRun.stdout.contains("would remove System V message queue \(queue) (from run \(crashedPID))"), "\(dryRun.stdout)")
        }
        #expect(dryRun.stdout.contains("not removed: System V message queue \(stray) "), "\(dryRun.stdout)")
        let cleaned = try TestSupport.runCLI(["clean"], environment: environment)
        #expect(cleaned.status == 0, "\(cleaned.stdout)")
        for queue in queues { #expect(!SysVMessageQueueMechanism.queueExists(id: queue), "queue \(queue) survived clean") }
        #expect(SysVMessageQueueMechanism.queueExists(id: stray), "clean removed a tagged queue that no ledger listed")
        #expect(TestSupport.entries(in: scratch).filter { $0.hasPrefix("ipcbench-\(crashedPID)-") }.isEmpty)
    }
}
