import Foundation
import Glibc
import IPCBench
import Testing

/// A cell that runs into a system resource limit fails (or is unavailable) with the system's reason
/// instead of hanging or crashing, and leaves nothing behind. (RLIMIT_MSGQUEUE: MessageQueueTests.)
@Suite("Resource limits end cells with the system's reason")
struct ResourceLimitTests {
    @Test("A message larger than a System V queue's byte limit (msg_qbytes / msgmnb) fails the cell at once, naming the limit")
    func sysVQueueByteLimit() throws {
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let csv = directory + "/r.csv"
        let tagged = Self.taggedQueueKeys()
        // The test-only knob lowers each new queue's msg_qbytes to 1000 bytes (IPC_SET): without the
        // check, msgsnd of 2000 bytes would block forever and the cell would end only by timeout.
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--mechanisms", "sysv-msg,pipe", "--sizes", "2000", "--mode", "latency",
             "--repetitions", "1", "--messages", "100", "--cell-timeout", "30", "--quiet", "--out", csv],
            environment: ["TMPDIR": directory, "IPCBENCH_TEST_MSG_QBYTES": "1000"])
        #expect(result.status == 1, "\(result.stderr)")
        // "At once" is shown by the reason below, not by the clock (start-up time varies with the
        // machine): a msgsnd that blocked would end the cell only at the 30 s cell timeout, with a
        // timeout as its status instead of the limit.
        let rows = try TestSupport.readCSV(csv)
        try #require(rows.count == 2)
        #expect(rows[0]["status"]?.hasPrefix("failed: sysv-msg: a 2000-byte message does not fit queue ") == true, "\(rows[0]["status"] ?? "")")
        #expect(rows[0]["status"]?.contains("capacity is 1000 bytes (msg_qbytes; kernel.msgmnb = ") == true, "\(rows[0]["status"] ?? "")")
        #expect(rows[1]["mechanism"] == "pipe" && rows[1]["status"] == "ok")
        // Both queues the failed cell created are gone (the tests run one at a time, so no other
        // test makes queues meanwhile).
        #expect(Self.taggedQueueKeys().subtracting(tagged).isEmpty, "a queue of the run is still there")
        #expect(Set(TestSupport.entries(in: directory)) == ["r.csv", "r.metadata.json"])
    }

    /// Keys of the System V queues with ipcbench's tag.
    static func taggedQueueKeys() -> Set<key_t> {
        Set((SystemFacts.readWhole("/proc/sysvipc/msg") ?? "").split(separator: "\n").dropFirst()
            .compactMap { $0.split(separator: " ").first.flatMap { key_t($0) } }.filter { OwnedNames.isTagged(sysVKey: $0) })
    }

    /// True when this process may make a private mount namespace with its own /dev/shm (unprivileged
    /// user namespaces, or root): the test then mounts a small tmpfs there, seen by nobody else.
    static let canMountPrivateShm: Bool = {
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        probe.arguments = ["-Urm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /dev/shm"]
        probe.standardOutput = FileHandle.nullDevice
        probe.standardError = FileHandle.nullDevice
        guard (try? probe.run()) != nil else { return false }
        probe.waitUntilExit()
        return probe.terminationStatus == 0
    }()

    @Test("A POSIX shm segment that does not fit /dev/shm fails (or is unavailable) naming its free space, never SIGBUS",
          .enabled(if: canMountPrivateShm, "needs a private mount namespace (unshare -Urm) for a small /dev/shm"))
    func posixShmSpace() throws {
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let csv = directory + "/r.csv"
        // A 256 KiB /dev/shm in a private mount namespace: a throughput ring for 16 KiB messages
        // (64 slots, ≈1 MiB) does not fit, nor does even the smallest ring for 64 KiB messages. What the run
        // leaves in that /dev/shm is listed on stdout after it.
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        shell.arguments = [
            "-Urm", "sh", "-c", "mount -t tmpfs -o size=256k,mode=1777 tmpfs /dev/shm && \"$0\" \"$@\" >/dev/null; status=$?; echo left: $(ls -A /dev/shm); exit $status",
            TestSupport.binary, "run", "--placements", "cross-cpu", "--mechanisms", "shm-posix,pipe", "--variants", "in-place/spin,write/read",
            "--sizes", "16K,64K", "--mode", "throughput", "--repetitions", "1", "--messages", "100", "--quiet", "--no-plots", "--out", csv,
        ]
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = directory
        shell.environment = environment
        let output = Pipe()
        shell.standardOutput = output
        shell.standardError = FileHandle.nullDevice
        try shell.run()
        let listing = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        shell.waitUntilExit()
        #expect(shell.terminationStatus == 1)
        let rows = try TestSupport.readCSV(csv)
        let status = Dictionary(uniqueKeysWithValues: rows.map { ("\($0["mechanism"]!) \($0["message_bytes"]!)", $0["status"]!) })
        let small = status["shm-posix 16384"] ?? ""
        #expect(small.hasPrefix("failed: the ring needs ") && small.hasSuffix(" bytes but /dev/shm has 262144 bytes free"), "\(small)")
        let large = status["shm-posix 65536"] ?? ""
        #expect(large.hasPrefix("unavailable: message of 65536 bytes exceeds the limit of ") && large.contains("(free space in /dev/shm 262144 bytes"),
                "\(large)")
        #expect(status["pipe 16384"] == "ok" && status["pipe 65536"] == "ok")
        #expect(listing == "left:\n", "\(listing)")
        #expect(Set(TestSupport.entries(in: directory)) == ["r.csv", "r.metadata.json"])
    }
}
