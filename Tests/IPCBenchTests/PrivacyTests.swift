import Foundation
import Glibc
import IPCBench
import Testing

/// Everything a run creates is private to the user running it.
@Suite("Objects a run creates are private")
struct PrivacyTests {
    static func mode(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & 0o777 : nil
    }

    @Test("Workspace 0700; FIFOs, sockets, mapped files, POSIX shm and System V objects 0600", arguments: [
        "fifo", "unix-stream", "unix-dgram", "memfd", "mmap-file", "shm-posix", "shm-sysv", "sysv-msg",
    ])
    func createdObjectsArePrivate(mechanism: String) throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var checked: [(object: String, mode: mode_t?, expected: mode_t)] = []
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--mechanisms", mechanism, "--variants",
             MechanismRegistry.mechanism(id: mechanism)!.variants(for: .latency)[0], "--sizes", "64", "--mode", "latency",
             "--duration", "1.5", "--repetitions", "1", "--out", scratch + "/r.csv"],
            environment: ["TMPDIR": scratch]
        ) { pid in
            // Poll until the run's objects exist rather than sleeping a fixed time: how long start-up
            // takes depends on the machine. Then look once more, a little later, and check that look.
            // (An object listed but gone by the time it is looked at cannot be checked; the later look
            // is used only if it sees at least as much, in case the run has already begun to clean up.)
            _ = TestSupport.waitFor(seconds: 10) {
                checked = Self.objects(of: pid, in: scratch)
                return checked.count >= 2
            }
            usleep(300_000)
            let later = Self.objects(of: pid, in: scratch)
            if later.count >= checked.count { checked = later }
        }
        for (object, mode, expected) in checked {
            #expect(mode == expected, "\(object) is \(String(mode ?? 0, radix: 8)), expected \(String(expected, radix: 8))")
        }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(checked.count >= 2, "nothing was checked for \(mechanism): \(checked)")
    }

    /// The objects run `pid` has created so far, with their permission bits and the bits they must have.
    static func objects(of pid: pid_t, in scratch: String) -> [(object: String, mode: mode_t?, expected: mode_t)] {
        var found: [(object: String, mode: mode_t?, expected: mode_t)] = []
        var keys = Set<key_t>()
        for workspace in TestSupport.entries(in: scratch) where workspace.hasPrefix("ipcbench-\(pid)-") {
            let directory = scratch + "/" + workspace
            // The run's lock file (RunLock) is a private regular file beside its cell directories.
            if workspace.hasSuffix(RunLock.suffix) {
                found.append((directory, mode(directory), 0o600))
                continue
            }
            found.append((directory, mode(directory), 0o700))
            // The run's System V keys are listed in its cell directory's ledger.
            let ledger = (try? String(contentsOfFile: directory + "/" + OwnedNames.sysVLedgerName, encoding: .utf8)) ?? ""
            ledger.split(separator: "\n").compactMap { UInt32($0, radix: 16).map { key_t(bitPattern: $0) } }.forEach { keys.insert($0) }
            for entry in TestSupport.entries(in: directory) {
                found.append((directory + "/" + entry, mode(directory + "/" + entry), 0o600))
            }
        }
        for name in TestSupport.entries(in: "/dev/shm") where name.hasPrefix("ipcbench-\(pid)-") {
            found.append(("/dev/shm/" + name, mode("/dev/shm/" + name), 0o600))
        }
        for table in ["/proc/sysvipc/msg", "/proc/sysvipc/shm", "/proc/sysvipc/sem"] {
            for row in (SystemFacts.readWhole(table) ?? "").split(separator: "\n").dropFirst() {
                let fields = row.split(separator: " ")
                guard fields.count > 2, let key = Int32(fields[0]), keys.contains(key) else { continue }
                found.append(("\(table): \(row)", mode_t(fields[2], radix: 8), 0o600))
            }
        }
        return found.filter { $0.mode != nil }
    }
}
