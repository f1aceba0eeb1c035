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
        var checked: [String] = []
        let result = try TestSupport.runCLI(
            ["run", "--placements", "cross-cpu", "--mechanisms", mechanism, "--variants",
             MechanismRegistry.mechanism(id: mechanism)!.variants(for: .latency)[0], "--sizes", "64", "--mode", "latency",
             "--duration", "1.5", "--repetitions", "1", "--out", scratch + "/r.csv"],
            environment: ["TMPDIR": scratch]
        ) { pid in
            _ = TestSupport.waitFor(seconds: 10) { TestSupport.children(of: pid).count == 2 }
            usleep(300_000)
            for workspace in TestSupport.entries(in: scratch) where workspace.hasPrefix("ipcbench-\(pid)-") {
                let directory = scratch + "/" + workspace
                #expect(Self.mode(directory) == 0o700, "\(directory)")
                checked.append(directory)
                for entry in TestSupport.entries(in: directory) {
                    #expect(Self.mode(directory + "/" + entry) == 0o600, "\(entry) is \(String(Self.mode(directory + "/" + entry) ?? 0, radix: 8))")
                    checked.append(entry)
                }
            }
            for name in TestSupport.entries(in: "/dev/shm") where name.hasPrefix("ipcbench-\(pid)-") {
                #expect(Self.mode("/dev/shm/" + name) == 0o600, "\(name)")
                checked.append(name)
            }
            for table in ["/proc/sysvipc/msg", "/proc/sysvipc/shm", "/proc/sysvipc/sem"] {
                let rows = (SystemFacts.readWhole(table) ?? "").split(separator: "\n").dropFirst()
                for row in rows {
                    let fields = row.split(separator: " ")
                    guard let key = Int32(fields[0]), OwnedNames.ownerPID(ofSysVKey: key) == pid else { continue }
                    #expect(fields[2] == "600", "\(table): \(row)")
                    checked.append(table)
                }
            }
        }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(checked.count >= 2, "nothing was checked for \(mechanism): \(checked)")
    }
}
