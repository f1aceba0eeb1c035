import Foundation
import Glibc

/// Facts about this machine, read from /proc and /sys.
public enum SystemFacts {
    public static func read(_ path: String) -> String? {
        guard let text = readWhole(path) else { return nil }
        let trimmed = text.trimmingWhitespace()
        return trimmed.isEmpty ? nil : trimmed
    }

    /// The whole file, read to its end. /proc and /sys files report size 0, and
    /// String(contentsOfFile:) then returns only what one read() gives: the first 4 KiB.
    public static func readWhole(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.readToEnd() else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    public static func readInt(_ path: String) -> Int? { read(path).flatMap { Int($0) } }

    public static var onlineCPUs: [Int] {
        read("/sys/devices/system/cpu/online").flatMap(Affinity.parseCPUList) ?? Affinity.allowedCPUs()
    }

    public static var numaNodes: [Int] {
        read("/sys/devices/system/node/online").flatMap(Affinity.parseCPUList) ?? []
    }

    /// Whether `--memory-node` works here, in one line (metadata, `ipcbench topology`).
    public static var numaMemoryPlacement: String {
        if let reason = NUMA.unavailableReason { return "unavailable: \(reason)" }
        return "available (\(NUMA.libraryName); nodes with memory: \(MemoryNodeFacts.list(NUMA.memoryNodes)))"
    }

    public static func host() -> RunMetadata.Host {
        var name = utsname()
        uname(&name)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let cpuinfo = readWhole("/proc/cpuinfo") ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":", maxSplits: 1).last.map { String($0).trimmingWhitespace() }
        let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
        return RunMetadata.Host(
            hostname: field(name.nodename), kernel: "\(field(name.sysname)) \(field(name.release)) \(field(name.version))",
            architecture: field(name.machine), cpuModel: model, onlineCPUs: onlineCPUs, allowedCPUs: Affinity.allowedCPUs(),
            numaNodes: numaNodes, numaMemoryPlacement: numaMemoryPlacement, smtActive: readInt("/sys/devices/system/cpu/smt/active").map { $0 != 0 },
            virtualized: flags.split(separator: " ").contains("hypervisor"),
            clocksource: read("/sys/devices/system/clocksource/clocksource0/current_clocksource"),
            cpufreqGovernor: read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
            cpuidleDriver: read("/sys/devices/system/cpu/cpuidle/current_driver"),
            cpuidleGovernor: read("/sys/devices/system/cpu/cpuidle/current_governor"),
            guestHaltPollNanoseconds: readInt("/sys/module/haltpoll/parameters/guest_halt_poll_ns"))
    }

    /// Kernel limits relevant to the mechanisms (absent where the file is missing).
    public static func limits() -> [String: Int] {
        let files = [
            "fs.pipe-max-size": "/proc/sys/fs/pipe-max-size",
            "kernel.msgmax": "/proc/sys/kernel/msgmax",
            "kernel.msgmnb": "/proc/sys/kernel/msgmnb",
            "kernel.msgmni": "/proc/sys/kernel/msgmni",
            "fs.mqueue.msg_max": "/proc/sys/fs/mqueue/msg_max",
            "fs.mqueue.msgsize_max": "/proc/sys/fs/mqueue/msgsize_max",
            "net.core.rmem_max": "/proc/sys/net/core/rmem_max",
            "net.core.wmem_max": "/proc/sys/net/core/wmem_max",
            "net.core.rmem_default": "/proc/sys/net/core/rmem_default",
            "net.core.wmem_default": "/proc/sys/net/core/wmem_default",
            "vm.nr_hugepages": "/proc/sys/vm/nr_hugepages",
            "vm.hugetlb_shm_group": "/proc/sys/vm/hugetlb_shm_group",
        ]
        var limits = files.compactMapValues { readInt($0) }
        // The size of the pages shm-huge runs on (its rows' page size).
        if let pool = HugePagePool.current() { limits["huge_page_bytes"] = pool.pageBytes }
        return limits
    }

    /// The commit of the source tree the running binary was built from, when it sits inside a git
    /// checkout (read from .git without running git).
    /// Files under Sources/ (and Package.swift) of the checkout holding `executable` that were modified
    /// after it: at most `limit` of them, relative to the checkout; empty when none is, or when the
    /// executable is in no checkout. (A commit that changes no source leaves the binary current.)
    public static func sourcesChangedSinceBuild(executable: String = "/proc/self/exe", limit: Int = 5) -> [String] {
        guard let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: executable),
              let built = modificationTime(ofRegularFile: resolved)
        else { return [] }
        var directory = URL(fileURLWithPath: resolved).deletingLastPathComponent()
        while directory.path != "/", !FileManager.default.fileExists(atPath: directory.appendingPathComponent(".git").path) {
            directory.deleteLastPathComponent()
        }
        guard directory.path != "/" else { return [] }
        let root = directory.path
        var candidates = ["Package.swift"]
        if let enumerator = FileManager.default.enumerator(atPath: root + "/Sources") {
            for case let path as String in enumerator { candidates.append("Sources/" + path) }
        }
        var changed: [String] = []
        for path in candidates.sorted() where changed.count < limit {
            guard let modified = modificationTime(ofRegularFile: root + "/" + path), modified > built else { continue }
            changed.append(path)
        }
        return changed
    }

    /// A regular file's modification time in ns (lstat: a symbolic link is not followed), or nil.
    /// lstat rather than FileManager's attributes, which look up the owner's and group's names in
    /// /etc/passwd and /etc/group for every file (250 reads of each at every start).
    static func modificationTime(ofRegularFile path: String) -> Int? {
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return nil }
        return status.st_mtim.tv_sec * 1_000_000_000 + status.st_mtim.tv_nsec
    }

    public static func sourceCommit(executable: String = "/proc/self/exe") -> String? {
        guard let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: executable) else { return nil }
        var directory = URL(fileURLWithPath: resolved).deletingLastPathComponent()
        while directory.path != "/" {
            let git = directory.appendingPathComponent(".git")
            if let head = read(git.appendingPathComponent("HEAD").path) {
                guard head.hasPrefix("ref: ") else { return head }
                let ref = String(head.dropFirst(5))
                if let commit = read(git.appendingPathComponent(ref).path) { return commit }
                let packed = (try? String(contentsOfFile: git.appendingPathComponent("packed-refs").path, encoding: .utf8)) ?? ""
                return packed.split(separator: "\n").first { $0.hasSuffix(" " + ref) }.map { String($0.prefix(40)) }
            }
            directory.deleteLastPathComponent()
        }
        return nil
    }
}
