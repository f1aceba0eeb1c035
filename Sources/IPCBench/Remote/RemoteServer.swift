import Foundation
import Glibc
import SystemPackage
import Synchronization

/// `HOST:PORT` as given on the command line (`--bind`, `--remote`).
public struct HostAndPort: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// Splits at the last colon; nil unless both halves are present and the port is a number.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        let host = String(text[..<colon]), portText = text[text.index(after: colon)...]
        guard !host.isEmpty, !host.contains(":"), let port = UInt16(portText) else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String { "\(host):\(port)" }
}

/// What `ipcbench serve` was asked to do.
public struct ServerOptions: Sendable {
    /// Numeric IPv4 address and port of the control listener; the consumers bind the same address.
    public var bind = HostAndPort(host: "127.0.0.1", port: ControlProtocol.defaultPort)
    /// Consumers run here unless the client names a CPU (nil: the second allowed CPU, as locally).
    public var consumerCPU: Int?
    /// A fixed port for the consumers' data sockets (nil: the kernel picks one per cell).
    public var dataPort: UInt16?
    /// Exit after the first client's session.
    public var once = false
    /// How long a client may stay silent between messages before the server hangs up.
    public var idleTimeoutSeconds = 60.0
    public var workerExecutable = "/proc/self/exe"

    public init() {}
}

/// `ipcbench serve`: runs the consumer side of network cells for `ipcbench run --remote` clients.
/// Each repetition's consumer is a worker process exactly as in a local pair, bound to the server's
/// address; the control connection carries the barrier and the result.
///
/// Clients are served concurrently, each on its own thread, but only one *repetition* runs at a
/// time (two at once would disturb each other's figures): a repetition holds `repetitionSlot` from
/// its `start` to its result. So a client that connects and says nothing, or greets and then idles,
/// holds nobody up; it is hung up on after `greetingSeconds` without a hello, or `idleTimeoutSeconds`
/// without starting a repetition (a repeated hello does not count). The set-up a client may ask for
/// is bounded (`longestSetupSeconds`), which bounds how long a consumer's buffers stay allocated
/// for a repetition that never gets its go.
///
/// Bad input from a client is answered with an `error` message; a frame the server cannot trust
/// ends that client's connection; nothing a client sends ends the server.
public final class RemoteServer: @unchecked Sendable {  // immutable after init but for the Mutexes
    public let options: ServerOptions
    /// The control port actually bound (differs from `options.bind.port` when that was 0).
    public let port: UInt16
    public let info: ServerInfo
    private let listener: Int32
    private let log: @Sendable (String) -> Void
    /// True while a repetition runs.
    private let repetitionSlot = Mutex(false)
    private let sessionCount = Mutex(0)

    /// Limits on what a client may ask for, so a request cannot tie the server up for ever.
    static let longestDurationSeconds = 3600.0
    static let longestTimeoutSeconds = 3600.0
    static let longestSetupSeconds = 60.0
    static let largestMessage = 1 << 30
    /// Clients connected at once; one more is told the server is busy and hung up on.
    static let maximumSessions = 16
    /// How long a new connection may take to say hello.
    static let greetingSeconds = 10.0

    public init(options: ServerOptions, log: @escaping @Sendable (String) -> Void) throws {
        self.options = options
        self.log = log
        let allowed = Affinity.allowedCPUs()
        if let cpu = options.consumerCPU, !allowed.contains(cpu) {
            throw IPCError.setup("--consumer-cpu \(cpu) is not a CPU this process can run on; allowed: \(allowed.map(String.init).joined(separator: ","))")
        }
        let address = try Socket.ipv4Address(options.bind.host, port: options.bind.port)
        let socket = try Socket.make(AF_INET, Int32(SOCK_STREAM.rawValue))
        // Restarting the server must not wait for the last session's TIME_WAIT.
        try Socket.setOption(socket.rawValue, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR")
        try Socket.bind(socket.rawValue, address, options.bind.description)
        guard Glibc.listen(socket.rawValue, Int32(Self.maximumSessions)) == 0 else { throw IPCError.lastSystemError("listen", options.bind.description) }
        port = try Socket.localPort(socket.rawValue)
        listener = socket.release()
        var name = utsname()
        uname(&name)
        let hostname = withUnsafeBytes(of: name.nodename) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        info = ServerInfo(
            toolVersion: RunMetadata.version, hostname: hostname, allowedCPUs: allowed,
            defaultConsumerCPU: options.consumerCPU ?? Placement.defaultPlacement(allowedCPUs: allowed).consumerCPU)
    }

    deinit { Glibc.close(listener) }

    /// Serves clients until interrupted (Ctrl-C, SIGTERM) or, with `once`, until the first client leaves.
    public func serve() throws {
        while !Interruption.requested {
            var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            do throws(Errno) {
                guard try SystemCall.once({ poll(&entry, 1, 100) }) > 0 else { continue }
            } catch .interrupted {
                continue  // to the check of Interruption.requested
            } catch {
                throw IPCError.system("poll", error, "listener")
            }
            var peer = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let fd = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(listener, $0, &length) }
            }
            guard fd >= 0 else {
                // Out of descriptors: the listener stays readable, so wait instead of spinning.
                if errno == EMFILE || errno == ENFILE { usleep(100_000) }
                continue // otherwise the client gave up already, or EINTR: keep serving
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            let client = Self.describe(peer)
            let admitted = sessionCount.withLock { count in
                guard count < Self.maximumSessions else { return false }
                count += 1
                return true
            }
            guard admitted else {
                log("client \(client) refused: \(Self.maximumSessions) clients are connected")
                let connection = ControlConnection(descriptor: fd)
                _ = try? connection.send(.error(cell: nil, message: "the server is busy: \(Self.maximumSessions) clients are connected; try again later"))
                connection.close()
                continue
            }
            log("client \(client) connected")
            let thread = Thread { [self] in
                let connection = ControlConnection(descriptor: fd)
                let session = ServerSession(server: self, connection: connection)
                let ending = session.run()
                connection.close()
                log("client \(client): \(session.repetitions) repetition(s) run, \(session.failures) failed; \(ending)")
                sessionCount.withLock { $0 -= 1 }
            }
            thread.start()
            if options.once {
                waitForSessions()
                return
            }
        }
        // Interrupted: each session notices, ends its consumer and answers its client.
        waitForSessions()
    }

    private func waitForSessions() {
        while sessionCount.withLock({ $0 }) > 0 { usleep(10_000) }
    }

    /// Runs `body` as the only repetition on this server, waiting for the one running to end, up to
    /// `deadline`.
    func runAlone<T>(until deadline: Deadline, body: () throws -> T) throws -> T {
        while !repetitionSlot.withLock({ busy in
            defer { busy = true }
            return !busy
        }) {
            if Interruption.requested { throw IPCError.interrupted }
            guard !deadline.hasPassed else {
                throw IPCError.timeout("the server was running another client's repetition for the whole set-up time; try again")
            }
            usleep(5_000)
        }
        defer { repetitionSlot.withLock { $0 = false } }
        return try body()
    }

    static func describe(_ address: sockaddr_in) -> String {
        var copy = address.sin_addr
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &copy, &text, socklen_t(INET_ADDRSTRLEN))
        let host = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(host):\(UInt16(bigEndian: address.sin_port))"
    }

    /// Checks a client's request; the error text goes back to the client.
    func validate(_ request: CellRequest) throws -> (any Mechanism, consumerCPU: Int?) {
        let task = request.task
        let allowed = MechanismRegistry.acrossHosts.map(\.id).joined(separator: ", ")
        guard let mechanism = MechanismRegistry.mechanism(id: task.mechanismID), mechanism.crossesHosts else {
            throw IPCError.setup("mechanism '\(task.mechanismID.prefix(40))' cannot run across hosts; allowed: \(allowed)")
        }
        let variants = mechanism.variants(for: task.options.mode) + mechanism.optionalVariants(for: task.options.mode)
        guard variants.contains(task.options.variant) else {
            throw IPCError.setup("\(mechanism.id) has no variant '\(task.options.variant.prefix(40))' in \(task.options.mode.rawValue) mode; allowed: \(variants.joined(separator: ", "))")
        }
        let largest = min(mechanism.messageLimit()?.bytes ?? Self.largestMessage, Self.largestMessage)
        guard (MessageFormat.minimumMessageBytes...largest).contains(task.options.messageBytes) else {
            throw IPCError.setup("message size \(task.options.messageBytes) is out of range for \(mechanism.id): \(MessageFormat.minimumMessageBytes) to \(largest) bytes")
        }
        guard task.warmupMessages >= 0, task.maximumMessages >= 1 else {
            throw IPCError.setup("warm-up must be 0 or more and timed messages at least 1")
        }
        guard Double(task.durationNanoseconds) / 1e9 <= Self.longestDurationSeconds else {
            throw IPCError.setup("a repetition may last at most \(Int(Self.longestDurationSeconds)) s")
        }
        for (name, seconds, longest) in [
            ("set-up timeout", request.setupTimeoutSeconds, Self.longestSetupSeconds), ("cell timeout", request.cellTimeoutSeconds, Self.longestTimeoutSeconds),
        ] {
            guard seconds > 0, seconds <= longest else {
                throw IPCError.setup("\(name) must be between 0 and \(Int(longest)) s")
            }
        }
        if let secret = request.peerSecret {
            guard secret.utf8.count == PeerSecret.length, secret.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
                throw IPCError.setup("the peer secret must be \(PeerSecret.length) lowercase hexadecimal digits")
            }
        }
        let cpu = request.consumerCPU ?? info.defaultConsumerCPU
        if let cpu, !info.allowedCPUs.contains(cpu) {
            throw IPCError.setup("consumer CPU \(cpu) is not a CPU the server can run on; allowed there: \(info.allowedCPUs.map(String.init).joined(separator: ","))")
        }
        return (mechanism, cpu)
    }
}
