import CIPCShim
import Foundation
import Glibc
import IPCBench
import Testing

/// A closed terminal (SIGHUP) ends a run as cleanly as Ctrl-C, and a run that cannot create a thread
/// (RLIMIT_NPROC, a cgroup's pids.max) does not hang in the cache-line floor probe.
///
/// The children here are started with posix_spawn rather than `TestSupport.runCLI`: these tests need
/// default signal dispositions whatever the test runner inherited, a terminal as stdio, and a bounded
/// wait. `IPCBENCH_SIGNAL_TEST_BINARY` points them at another `ipcbench` (e.g. an old build, to see
/// them fail); by default they use the one next to the test bundle.
@Suite("SignalAndProbe: SIGHUP and the floor probe without threads")
struct SignalAndProbeTests {
    static var binary: String { ProcessInfo.processInfo.environment["IPCBENCH_SIGNAL_TEST_BINARY"] ?? TestSupport.binary }

    // MARK: Item 6: a closed terminal

    @Test("kill -HUP ends the run like Ctrl-C: status 129, nothing left behind, metadata interrupted by SIGHUP", .timeLimit(.minutes(2)))
    func hangupSignal() throws {
        let scratch = TestSupport.temporaryDirectory()
        let logs = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch); try? FileManager.default.removeItem(atPath: logs) }
        let child = try Child.spawn(
            [Self.binary] + Self.shmRun(scratch), environment: ["TMPDIR": scratch],
            stdio: .files(stdout: logs + "/stdout", stderr: logs + "/stderr"))
        defer { child.stop() }
        try Self.waitUntilInACell(child, scratch: scratch)
        kill(child.pid, SIGHUP)
        let status = child.wait(seconds: 30)
        let stderr = (try? String(contentsOfFile: logs + "/stderr", encoding: .utf8)) ?? ""
        try Self.expectCleanHangup(status, pid: child.pid, scratch: scratch, output: stderr)
    }

    @Test("Closing the terminal (the kernel's SIGHUP, then EIO on every write to it) ends the run cleanly with status 129", .timeLimit(.minutes(2)))
    func closedTerminal() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        // A pseudo-terminal whose slave becomes the run's controlling terminal (a new session, so the
        // run is its leader and the kernel signals it directly): what a terminal window or sshd gives.
        let terminal = try #require(PseudoTerminal.open(), "no pseudo-terminal: \(String(cString: strerror(errno)))")
        let (master, slave) = (terminal.master, terminal.slavePath)
        var masterOpen = true
        defer { if masterOpen { close(master) } }
        _ = fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK)

        let child = try Child.spawn([Self.binary] + Self.shmRun(scratch), environment: ["TMPDIR": scratch], stdio: .terminal(slave))
        defer { child.stop() }
        var screen = [UInt8]()
        // Progress is drawn on the terminal (stderr is a tty): keep reading it so the run never blocks.
        func drain() {
            var chunk = [UInt8](repeating: 0, count: 4096)
            while case let count = read(master, &chunk, chunk.count), count > 0 { screen += chunk[..<count] }
        }
        try Self.waitUntilInACell(child, scratch: scratch, meanwhile: drain)
        drain()
        close(master) // the terminal is gone: hang-up
        masterOpen = false
        let status = child.wait(seconds: 30)
        try Self.expectCleanHangup(status, pid: child.pid, scratch: scratch, output: String(decoding: screen, as: UTF8.self))
    }

    @Test("Started under nohup (SIGHUP ignored), the run ignores SIGHUP and completes", .timeLimit(.minutes(2)))
    func nohupKeepsRunning() throws {
        let nohup = try Self.tool("nohup")
        let scratch = TestSupport.temporaryDirectory()
        let logs = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch); try? FileManager.default.removeItem(atPath: logs) }
        let child = try Child.spawn(
            [nohup, Self.binary, "run", "--mechanisms", "shm-posix", "--sizes", "64", "--repetitions", "1", "--no-plots",
             "--out", scratch + "/r.csv"],
            environment: ["TMPDIR": scratch], stdio: .files(stdout: logs + "/stdout", stderr: logs + "/stderr"))
        defer { child.stop() }
        try Self.waitUntilInACell(child, scratch: scratch)
        kill(child.pid, SIGHUP)
        let status = child.wait(seconds: 60)
        let stderr = (try? String(contentsOfFile: logs + "/stderr", encoding: .utf8)) ?? ""
        #expect(status.map(WaitStatus.init) == .exited(0), "nohup'd run \(status.map { WaitStatus($0).description } ?? "still running"): \(stderr)")
        let metadata = try Self.metadata(scratch + "/r.metadata.json")
        #expect(metadata["state"] as? String == "complete" && metadata["interrupted_by"] == nil)
    }

    // MARK: Item 7: the floor probe when no thread can be created

    @Test("With no thread to spare the floor probe gives up at once: the run ends by itself, with no floor recorded", .timeLimit(.minutes(2)))
    func probeWithoutThreads() throws {
        let prlimit = try Self.tool("prlimit")
        let scratch = TestSupport.temporaryDirectory()
        let logs = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch); try? FileManager.default.removeItem(atPath: logs) }
        // RLIMIT_NPROC counts every process and thread of the real uid, and root is exempt from it: as
        // root the run goes to a uid with no process of its own, so a limit of 1 leaves it no thread.
        var wrapper = [prlimit, "--nproc=1:1"]
        if geteuid() == 0 {
            let setpriv = try Self.tool("setpriv")
            let uid = try #require(Self.idleUID(), "no uid without processes to run the child as")
            wrapper += [setpriv, "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "--"]
            try #require(chmod(scratch, 0o777) == 0)
        }
        let child = try Child.spawn(
            wrapper + [Self.binary, "run", "--mechanisms", "shm-posix", "--sizes", "64", "--repetitions", "1", "--no-plots",
                       "--out", scratch + "/r.csv"],
            environment: ["TMPDIR": scratch], stdio: .files(stdout: logs + "/stdout", stderr: logs + "/stderr"))
        defer { child.stop() }
        // The old probe spun forever here, deaf to SIGTERM; the new one returns within its 1 s start
        // bound at most (at once when pthread_create fails). A debug build takes well under 5 s.
        let status = child.wait(seconds: 20)
        let ending = status.map { WaitStatus($0).description } ?? child.stop()
        let stderr = (try? String(contentsOfFile: logs + "/stderr", encoding: .utf8)) ?? ""
        let metadataPath = scratch + "/r.metadata.json"
        if status != nil, (try? Self.metadata(metadataPath)) == nil {
            // The wrapper could not start ipcbench at all (e.g. the binary is not readable by that uid).
            try Test.cancel("could not start ipcbench under a thread limit (\(ending)): \(stderr)")
        }
        #expect(status != nil, "the run hung (floor probe waiting for a thread that never started); it \(ending)")
        guard let status else { return }
        // Cells fail (posix_spawn has no process to spare either), so 1; never a signal.
        #expect([WaitStatus.exited(0), .exited(1)].contains(WaitStatus(status)), "\(WaitStatus(status)): \(stderr)")
        let metadata = try Self.metadata(metadataPath)
        #expect(metadata["state"] as? String == "complete")
        let floors = metadata["floor_probe_round_trip_nanoseconds"] as? [String: Any]
        #expect(floors?.isEmpty == true, "a floor was measured, so the probe's thread did start: \(String(describing: floors))")
        let rows = try TestSupport.readCSV(scratch + "/r.csv")
        #expect(!rows.isEmpty && rows.allSatisfy { $0["status"]?.contains("Resource temporarily unavailable") == true },
                "the thread limit should leave no process for the workers either: \(rows.map { $0["status"] ?? "" })")
    }

    // MARK: Helpers

    /// A run of shared-memory cells that takes seconds, so a signal lands in the middle of one.
    static func shmRun(_ scratch: String) -> [String] {
        ["run", "--mechanisms", "shm-posix", "--sizes", "64,4K", "--no-plots", "--out", scratch + "/r.csv"]
    }

    /// Waits until the run is inside a cell: its temp directory under `scratch` and its POSIX
    /// shared-memory object exist (what a signal at that moment could leak).
    static func waitUntilInACell(_ child: Child, scratch: String, meanwhile: () -> Void = {}) throws {
        let tag = "ipcbench-\(child.pid)-"
        let inACell = TestSupport.waitFor(seconds: 30) {
            meanwhile()
            return TestSupport.entries(in: scratch).contains { $0.hasPrefix(tag) } && !leftInSharedMemory(child.pid).isEmpty
        }
        try #require(inACell, "the run never reached a cell (\(child.stop())); \(TestSupport.entries(in: scratch))")
    }

    static func leftInSharedMemory(_ pid: pid_t) -> [String] {
        TestSupport.entries(in: "/dev/shm").filter { $0.hasPrefix("ipcbench-\(pid)-") || $0.hasPrefix("sem.ipcbench-\(pid)-") }
    }

    static func expectCleanHangup(_ status: Int32?, pid: pid_t, scratch: String, output: String) throws {
        let ending = status.map { WaitStatus($0) }
        #expect(ending == .exited(128 + SIGHUP), "the run \(ending?.description ?? "did not end within 30 s"): \(output.suffix(2000))")
        // Its own temp directory and shared-memory objects are gone; only the CSV and metadata stay.
        #expect(TestSupport.entries(in: scratch).sorted() == ["r.csv", "r.metadata.json"])
        let shm = leftInSharedMemory(pid)
        #expect(shm.isEmpty, "left in /dev/shm: \(shm)")
        shm.forEach { unlink("/dev/shm/" + $0) }
        let dryRun = try TestSupport.runCLI(["clean", "--dry-run"], environment: ["TMPDIR": scratch])
        #expect(!dryRun.stdout.contains("ipcbench-\(pid)-"), "clean would still find: \(dryRun.stdout)")
        let metadata = try Self.metadata(scratch + "/r.metadata.json")
        #expect(metadata["state"] as? String == "interrupted", "metadata state: \(metadata["state"] ?? "none")")
        #expect(metadata["interrupted_by"] as? String == "SIGHUP", "interrupted_by: \(metadata["interrupted_by"] ?? "none")")
        let text = try String(contentsOfFile: scratch + "/r.csv", encoding: .utf8)
        #expect(text.hasSuffix("\n"))
        #expect(try TestSupport.readCSV(scratch + "/r.csv").allSatisfy { $0["status"] == "ok" })
    }

    static func metadata(_ path: String) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    }

    /// An installed tool, or the test is skipped saying which one is missing.
    static func tool(_ name: String) throws -> String {
        if let path = ["/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"].map({ $0 + name }).first(where: FileManager.default.isExecutableFile) {
            return path
        }
        try Test.cancel("\(name) is not installed")
    }

    /// A uid no process runs as (RLIMIT_NPROC counts the uid's processes across the machine).
    static func idleUID() -> uid_t? {
        var busy = Set<uid_t>()
        for entry in TestSupport.entries(in: "/proc") where Int32(entry) != nil {
            guard let status = try? String(contentsOfFile: "/proc/\(entry)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) else { continue }
            line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().compactMap { uid_t($0) }.forEach { busy.insert($0) }
        }
        return [65534, 64_999, 60_001].first { !busy.contains($0) }
    }
}

/// posix_openpt and friends, which the Glibc module does not import (they need _XOPEN_SOURCE).
enum PseudoTerminal {
    private static func function<T>(_ name: String, as type: T.Type) -> T? {
        dlsym(dlopen(nil, RTLD_NOW), name).map { unsafeBitCast($0, to: type) }
    }

    /// A new pseudo-terminal: the master's descriptor (close-on-exec) and the slave's path.
    static func open() -> (master: Int32, slavePath: String)? {
        typealias IntToInt = @convention(c) (Int32) -> Int32
        typealias Name = @convention(c) (Int32) -> UnsafeMutablePointer<CChar>?
        guard let openpt = function("posix_openpt", as: IntToInt.self), let grantpt = function("grantpt", as: IntToInt.self),
              let unlockpt = function("unlockpt", as: IntToInt.self), let ptsname = function("ptsname", as: Name.self)
        else { return nil }
        let master = openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { return nil }
        guard grantpt(master) == 0, unlockpt(master) == 0, let name = ptsname(master) else {
            close(master)
            return nil
        }
        return (master, String(cString: name))
    }
}

/// A wait status, decoded.
enum WaitStatus: Equatable, CustomStringConvertible {
    case exited(Int32)
    case signaled(Int32)
    case other(Int32)

    init(_ status: Int32) {
        if ipcb_exited(status) != 0 {
            self = .exited(ipcb_exit_code(status))
        } else if ipcb_signaled(status) != 0 {
            self = .signaled(ipcb_term_signal(status))
        } else {
            self = .other(status)
        }
    }

    var description: String {
        switch self {
        case let .exited(code): "exited with status \(code)"
        case let .signaled(signal): "was killed by signal \(signal) (\(String(cString: strsignal(signal))))"
        case let .other(status): "ended with wait status \(status)"
        }
    }
}

/// A child process started with posix_spawn: default dispositions for the signals under test and an
/// empty signal mask (whatever the test runner has), no descriptor but stdio inherited.
final class Child {
    enum Stdio {
        case files(stdout: String, stderr: String)
        /// The pseudo-terminal slave at this path, as stdio and, in a new session, as controlling terminal.
        case terminal(String)
    }

    let pid: pid_t
    private var reaped = false

    private init(pid: pid_t) { self.pid = pid }

    static func spawn(_ arguments: [String], environment: [String: String], stdio: Stdio) throws -> Child {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var flags = Int32(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)
        switch stdio {
        case let .files(stdout, stderr):
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        case let .terminal(slave):
            // setsid runs before the file actions, so opening the slave makes it the controlling terminal.
            flags |= 0x80 // POSIX_SPAWN_SETSID (glibc)
            posix_spawn_file_actions_addopen(&actions, 0, slave, O_RDWR, 0)
            posix_spawn_file_actions_adddup2(&actions, 0, 1)
            posix_spawn_file_actions_adddup2(&actions, 0, 2)
        }
        _ = ipcb_spawn_close_from(&actions, 3)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGHUP, SIGINT, SIGTERM, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(flags))

        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, arguments[0], &actions, &attributes, &argv, &envp)
        guard status == 0 else { throw IPCError.system(call: "posix_spawn", errno: status, context: arguments[0]) }
        return Child(pid: pid)
    }

    /// Waits up to `seconds` for the child to end: its wait status, or nil while it still runs.
    func wait(seconds: Double) -> Int32? {
        guard !reaped else { return nil }
        let deadline = Date().addingTimeInterval(seconds)
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { reaped = true; return status }
            if result < 0, errno != EINTR { reaped = true; return nil }
            if Date() >= deadline { return nil }
            usleep(20_000)
        }
    }

    /// Ends a child still running: SIGTERM, then SIGKILL after 5 s. Says how it went.
    @discardableResult
    func stop() -> String {
        guard !reaped else { return "had ended" }
        kill(pid, SIGTERM)
        if let status = wait(seconds: 5) { return "ended on SIGTERM: \(WaitStatus(status))" }
        kill(pid, SIGKILL)
        _ = wait(seconds: 5)
        return "ignored SIGTERM for 5 s and was killed"
    }
}
