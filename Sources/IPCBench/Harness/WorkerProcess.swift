import CIPCShim
import Foundation
import Glibc
import SystemPackage

/// A worker process started by the parent: its pid and the parent's ends of its control channel.
final class WorkerProcess: PairWorker {
    let role: Role
    /// How errors name it: its role, or "producer of pair 3" when several pairs run at once.
    let name: String
    let pid: pid_t
    private let eventDescriptor: Int32
    private var goDescriptor: Int32
    private var pending: [UInt8] = []
    private var endOfEvents = false
    /// How it ended, once reaped: asked again, the answer stays the same.
    private var ending: WorkerEnding?

    /// Starts `executable worker --task JSON` with the control channel on fds 3 (to the parent) and
    /// 4 (from the parent) and `inherited` dup'ed to fds 10, 11, …; every other fd is closed.
    /// Each worker gets its own process group so a terminal's Ctrl-C reaches only the parent,
    /// which then ends the workers and cleans up in order.
    /// `peerSecret`, when given, reaches the worker in its environment (`PeerSecret.environmentName`),
    /// which other users cannot read, unlike its command line.
    init(role: Role, name: String? = nil, executable: String, task: WorkerTask, inherited: [Int32], peerSecret: String? = nil) throws {
        self.role = role
        self.name = name ?? role.rawValue
        var toParent: [Int32] = [-1, -1]
        var fromParent: [Int32] = [-1, -1]
        guard ipcb_pipe_cloexec(&toParent) == 0 else { throw IPCError.lastSystemError("pipe2") }
        guard ipcb_pipe_cloexec(&fromParent) == 0 else {
            let failure = IPCError.lastSystemError("pipe2")
            close(toParent[0]); close(toParent[1])
            throw failure
        }
        var started = false
        defer {
            close(toParent[1])
            close(fromParent[0])
            // The parent's ends, kept only once the worker is running.
            if !started {
                close(toParent[0])
                close(fromParent[1])
            }
        }

        // Move every source above the target range first, so no dup2 overwrites a later source.
        // (Just above it, not at a fixed high number: a low `ulimit -n` must still work.)
        let targets: [(source: Int32, target: Int32)] =
            [(toParent[1], WorkerControl.toParent), (fromParent[0], WorkerControl.fromParent)]
            + inherited.enumerated().map { ($0.element, Rendezvous.inheritedDescriptor($0.offset)) }
        let aboveTargets = (targets.map(\.target).max() ?? 4) + 1
        var raised: [Int32] = []
        defer { raised.forEach { close($0) } }
        for pair in targets {
            let high = fcntl(pair.source, F_DUPFD_CLOEXEC, aboveTargets)
            guard high >= 0 else { throw IPCError.lastSystemError("fcntl(F_DUPFD_CLOEXEC)") }
            raised.append(high)
        }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (index, pair) in targets.enumerated() {
            posix_spawn_file_actions_adddup2(&actions, raised[index], pair.target)
        }
        ipcb_spawn_close_from(&actions, aboveTargets)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)

        let taskJSON = String(decoding: try JSONEncoder().encode(task), as: UTF8.self)
        let arguments = [executable, "worker", "--parent-pid", String(getpid()), "--task", taskJSON]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }

        var environment: [UnsafeMutablePointer<CChar>?] = []
        var entry = environ
        while let variable = entry.pointee {
            if !String(cString: variable).hasPrefix(PeerSecret.environmentName + "=") { environment.append(strdup(variable)) }
            entry += 1
        }
        if let peerSecret { environment.append(strdup(PeerSecret.environmentName + "=" + peerSecret)) }
        environment.append(nil)
        defer { environment.forEach { free($0) } }

        var child: pid_t = 0
        let status = posix_spawn(&child, executable, &actions, &attributes, &argv, environment)
        guard status == 0 else { throw IPCError.system(call: "posix_spawn", errno: status, context: executable) }
        started = true
        pid = child
        eventDescriptor = toParent[0]
        goDescriptor = fromParent[1]
    }

    deinit {
        terminate()
        close(eventDescriptor)
        if goDescriptor >= 0 { close(goDescriptor) }
    }

    /// The barrier: both workers are ready; this releases one of them into its warm-up and timed loop.
    func sendGo() throws {
        var go = UInt8(ascii: "G")
        guard write(goDescriptor, &go, 1) == 1 else { throw IPCError.lastSystemError("write", "go to \(name)") }
    }

    /// The next complete event already buffered, if any.
    func bufferedEvent() throws -> WorkerEvent? {
        guard let newline = pending.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = Data(pending[..<newline])
        pending.removeSubrange(...newline)
        do {
            return try JSONDecoder().decode(WorkerEvent.self, from: line)
        } catch {
            throw IPCError.worker("\(name) sent an unreadable control message: \(String(decoding: line.prefix(200), as: UTF8.self))")
        }
    }

    var descriptorForPolling: Int32 { endOfEvents ? -1 : eventDescriptor }
    var atEndOfEvents: Bool { endOfEvents }

    /// Reads what the worker has written; end-of-file means the worker is gone.
    func readEvents() {
        var chunk = [UInt8](repeating: 0, count: 65536)
        do throws(Errno) {
            let count = try SystemCall.retrying { chunk.withUnsafeMutableBytes { read(eventDescriptor, $0.baseAddress, $0.count) } }
            if count == 0 { endOfEvents = true }
            pending.append(contentsOf: chunk[..<count])
        } catch .wouldBlock {
            // nothing yet
        } catch {
            endOfEvents = true
        }
    }

    /// The worker's ending ("consumer was killed by SIGKILL"), reaped, when its control channel reaches
    /// end-of-file within `milliseconds` with no complete event before it.
    func vanished(withinMilliseconds milliseconds: Int) -> String? {
        guard endsSilently(withinMilliseconds: milliseconds) else { return nil }
        return "\(name) \(reap(timeoutNanoseconds: 500_000_000))"
    }

    /// True when the control channel reaches end-of-file within `milliseconds` with no complete event
    /// before it: the worker ended (or is ending) without reporting anything.
    private func endsSilently(withinMilliseconds milliseconds: Int) -> Bool {
        let deadline = MonotonicClock.now() + UInt64(milliseconds) * 1_000_000
        while !endOfEvents, !pending.contains(UInt8(ascii: "\n")) {
            let now = MonotonicClock.now()
            guard now < deadline else { return false }
            var entry = pollfd(fd: eventDescriptor, events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, Int32((deadline - now) / 1_000_000) + 1) > 0 { readEvents() }
        }
        return endOfEvents && !pending.contains(UInt8(ascii: "\n"))
    }

    /// Waits up to `timeoutNanoseconds` for the worker to exit on its own and says how it ended;
    /// after that it is killed.
    @discardableResult
    func reap(timeoutNanoseconds: UInt64) -> WorkerEnding {
        if let ending { return ending }
        let deadline = MonotonicClock.now() + timeoutNanoseconds
        var status: Int32 = 0
        var found: WorkerEnding
        while true {
            guard let result = try? SystemCall.retrying({ waitpid(pid, &status, WNOHANG) }) else {
                found = .notWaitable
                break
            }
            if result == pid {
                found = WorkerEnding(waitStatus: status)
                break
            }
            if MonotonicClock.now() >= deadline {
                kill(pid, SIGKILL)
                _ = try? SystemCall.retrying { waitpid(pid, &status, 0) }
                found = .killedAfterTimeout
                break
            }
            usleep(1000)
        }
        ending = found
        return found
    }

    /// Kills the worker (if still running) and reaps it.
    func terminate() {
        guard ending == nil else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        let reaped = try? SystemCall.retrying { waitpid(pid, &status, 0) }
        ending = reaped == nil ? .notWaitable : WorkerEnding(waitStatus: status)
    }
}

/// How a worker process ended, as its parent saw it.
enum WorkerEnding: Equatable, CustomStringConvertible {
    case exited(status: Int32)
    case killed(signal: Int32)
    /// Still running when its time was up: the parent killed it.
    case killedAfterTimeout
    case otherWaitStatus(Int32)
    case notWaitable

    /// The one ending that means the worker finished its work.
    static let success = WorkerEnding.exited(status: 0)

    init(waitStatus status: Int32) {
        if ipcb_exited(status) != 0 {
            self = .exited(status: ipcb_exit_code(status))
        } else if ipcb_signaled(status) != 0 {
            self = .killed(signal: ipcb_term_signal(status))
        } else {
            self = .otherWaitStatus(status)
        }
    }

    /// Completes "producer …" in error messages.
    var description: String {
        switch self {
        case let .exited(status): "exited with status \(status)"
        case let .killed(signal): "was killed by \(Self.signalName(signal))"
        case .killedAfterTimeout: "did not exit and was killed"
        case let .otherWaitStatus(status): "ended with wait status \(status)"
        case .notWaitable: "could not be waited for"
        }
    }

    static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            SIGKILL: "SIGKILL", SIGTERM: "SIGTERM", SIGINT: "SIGINT", SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT",
            SIGBUS: "SIGBUS", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP", SIGPIPE: "SIGPIPE", SIGHUP: "SIGHUP", SIGFPE: "SIGFPE",
        ]
        return names[signal] ?? "signal \(signal)"
    }
}
