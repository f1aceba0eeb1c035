import Foundation
import Glibc
import IPCBench
import Testing

/// `ipcbench serve` + `ipcbench run --remote`: the control protocol, loopback sessions (always run),
/// a fuzzed server that must keep serving, and a run between two network namespaces joined by a veth
/// pair (skipped where namespaces cannot be made). Each test is bounded in count and time.
@Suite("Remote", .serialized)
struct RemoteTests {
    // MARK: - Control frames

    @Test("Control frames round-trip; bad magic, unknown versions, oversized, truncated and unreadable frames are refused")
    func controlFrames() throws {
        let (sender, receiver) = try Self.connectedPair()
        let valid = try ControlProtocol.frame(.hello(client: "test"))

        try sender.sendRaw(valid)
        guard case .hello(client: "test")? = try receiver.receive(timeoutSeconds: 2) else {
            Issue.record("a hello frame did not round-trip")
            return
        }
        // Unreadable JSON in a whole frame: refused, and the stream stays in step for the next frame.
        try sender.sendRaw(ControlProtocol.frame(Array("{\"start\":{\"cell\":\"seven\"}}".utf8)))
        #expect(Self.refusal(receiver) == .message("unreadable control message (26 bytes): not a known message of protocol version 1"))
        // A message the receiver does not accept is refused before its body is decoded.
        try sender.sendRaw(ControlProtocol.frame(.bye))
        #expect(Self.refusal(receiver, accepted: ["hello"])?.description.contains("unexpected control message 'bye'") == true)
        try sender.sendRaw(valid)
        #expect(try receiver.receive(timeoutSeconds: 2) != nil)

        let cases: [(bytes: [UInt8], expected: String)] = [
            (Array("GET / HTTP/1.1\r\n\r\n".utf8), "bad magic"),
            (ControlProtocol.frame(Array(valid.dropFirst(ControlProtocol.headerBytes)), version: 2), "unsupported protocol version 2"),
            (ControlProtocol.frame([], length: UInt32(ControlProtocol.maximumPayloadBytes + 1)), "exceeds the limit of 1048576 bytes"),
            (Array(valid.prefix(valid.count - 3)), "truncated control frame"),
            (Array(valid.prefix(4)), "truncated control frame"),
        ]
        for (bytes, expected) in cases {
            let (sender, receiver) = try Self.connectedPair()
            try sender.sendRaw(bytes)
            shutdown(sender.descriptor, Int32(SHUT_WR))
            guard case let .framing(text)? = Self.refusal(receiver) else {
                Issue.record("\(expected): not refused as a framing error")
                continue
            }
            #expect(text.contains(expected), "\(text)")
        }
    }

    @Test("A latency histogram claiming more samples than any run could record is refused")
    func absurdHistogramIsRefused() throws {
        let json = Data("[[1000,9223372036854775808],[2000,9223372036854775808]]".utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(LatencyHistogram.self, from: json) }
        let sane = try JSONDecoder().decode(LatencyHistogram.self, from: Data("[[1000,3],[2000,1]]".utf8))
        #expect(sane.count == 4)
    }

    // MARK: - Loopback sessions

    @Test("Loopback serve --once + run --remote: one CSV with both sides' CPU cost, RTT/2 only, and the server's address")
    func loopbackRun() throws {
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try ServerProcess(["--once"], logDirectory: directory)
        defer { server.stop() }
        let address = "127.0.0.1:\(server.port)"
        let csv = directory + "/remote.csv"
        let result = try TestSupport.runCLI([
            "run", "--remote", address, "--sizes", "64", "--repetitions", "2", "--duration", "0.05", "--warmup", "200", "--out", csv, "--quiet",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("latency is RTT/2"))

        let rows = try TestSupport.readCSV(csv)
        #expect(rows.count == 4) // tcp and udp, latency and throughput
        let serverDefault = Placement.defaultPlacement(allowedCPUs: Affinity.allowedCPUs())
        for row in rows {
            let label = "\(row["mechanism"]!) \(row["mode"]!)"
            #expect(row["status"] == "ok", "\(label): \(row["status"]!)")
            #expect(row["remote"] == address, "\(label)")
            #expect(row["placement"] == "remote", "\(label)")
            #expect(row["repetitions"] == "2", "\(label)")
            #expect(row["producer_cpu"] == serverDefault.producerCPU.map(String.init), "\(label)")
            #expect(row["consumer_cpu"] == serverDefault.consumerCPU.map(String.init), "\(label)")
            // Both sides' CPU cost: the consumer's comes back from the server.
            #expect(Double(row["producer_cpu_ns_per_msg"]!).map { $0 > 0 } == true, "\(label)")
            #expect(Double(row["consumer_cpu_ns_per_msg"]!).map { $0 > 0 } == true, "\(label)")
            #expect(row["one_way_p50_ns"] == "", "\(label): no shared clock, so no one-way figure")
            if row["mode"] == "latency" {
                #expect(Double(row["rtt_half_p50_ns"]!).map { $0 > 0 } == true, "\(label)")
            } else {
                #expect(Double(row["bytes_per_s"]!).map { $0 > 0 } == true, "\(label)")
            }
        }
        let metadata = try String(contentsOfFile: directory + "/remote.metadata.json", encoding: .utf8)
        #expect(metadata.contains("\"server\" : \"\(address)\""))
        // --once: the server leaves after its one client (4 cells × 2 repetitions), having reaped every consumer.
        #expect(server.waitForExit(seconds: 5) == 0, "\(server.log)")
        #expect(server.log.contains("8 repetition(s) run, 0 failed"), "\(server.log)")
    }

    @Test("Bad --remote and serve input: exit 2 with one line naming what is allowed; an unreachable server: exit 1, no files")
    func usageErrors() throws {
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bad: [(arguments: [String], expected: String)] = [
            (["run", "--remote", "127.0.0.1:1", "--mechanisms", "tcp,pipe"], "only mechanisms that work across hosts: tcp, udp (not 'pipe')"),
            (["run", "--remote", "server-without-port"], "is not HOST:PORT"),
            (["run", "--remote", "127.0.0.1:0"], "is not HOST:PORT"),
            (["run", "--remote", "127.0.0.1:1", "--placements", "same-cpu"], "--placements cannot be combined with --remote"),
            (["serve", "--bind", "localhost:7"], "not a numeric IPv4 address"),
            (["serve", "--bind", "127.0.0.1"], "is not ADDR:PORT"),
            (["serve", "--consumer-cpu", "4096"], "--consumer-cpu 4096"),
            (["serve", "--data-port", "0"], "--data-port"),
        ]
        for (arguments, expected) in bad {
            let result = try TestSupport.runCLI(arguments)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(expected), "\(arguments): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(arguments): \(result.stderr)")
        }
        // Port 1 on loopback: nothing listens there.
        let csv = directory + "/never.csv"
        let unreachable = try TestSupport.runCLI(["run", "--remote", "127.0.0.1:1", "--mechanisms", "tcp", "--out", csv])
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.contains("cannot connect to the server at 127.0.0.1:1"), "\(unreachable.stderr)")
        #expect(!FileManager.default.fileExists(atPath: csv))
    }

    @Test("A client that leaves mid-repetition: the server kills that consumer and serves the next client")
    func abandonedRepetitionIsCleanedUp() throws {
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try ServerProcess([], logDirectory: directory)
        defer { server.stop() }

        let client = try Self.connect(port: server.port)
        try client.send(.hello(client: "test"))
        guard case .welcome? = try client.receive(timeoutSeconds: 5) else {
            Issue.record("no welcome")
            return
        }
        try client.send(.start(cell: 1, request: Self.request(mechanism: "tcp")))
        guard case .bound(cell: 1, _)? = try client.receive(timeoutSeconds: 5) else {
            Issue.record("no bound reply")
            return
        }
        #expect(TestSupport.children(of: server.pid).count == 1) // the consumer, waiting for its producer
        client.close()
        #expect(TestSupport.waitFor(seconds: 5) { TestSupport.children(of: server.pid).isEmpty }, "consumer left running")

        let next = try Self.connect(port: server.port)
        try next.send(.hello(client: "test"))
        guard case .welcome? = try next.receive(timeoutSeconds: 5) else {
            Issue.record("the next client got no welcome")
            return
        }
        next.close()
        #expect(server.stop() == 128 + SIGTERM)
    }

    @Test("Fuzz: random, truncated, oversized and wrong-version control messages each get an error or a close; the server keeps serving")
    func fuzzedServerKeepsServing() throws {
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try ServerProcess(["--idle-timeout", "1"], logDirectory: directory)
        defer { server.stop() }

        var generator = SystemRandomNumberGenerator()
        let valid = try ControlProtocol.frame(.start(cell: 1, request: Self.request(mechanism: "tcp")))
        let hello = try ControlProtocol.frame(.hello(client: "fuzz"))
        // At least 24 exchanges (every kind three times over, then random kinds) and for at least 3 s:
        // a count, not a time box, so a slow machine runs fewer random extras but never too few.
        let deadline = Date().addingTimeInterval(3)
        var exchanges = 0
        var errorsSeen = 0
        while exchanges < 24 || Date() < deadline {
            let kind = exchanges < 24 ? exchanges % 8 : Int.random(in: 0..<8, using: &generator)
            var bytes: [UInt8]
            switch kind {
            case 0: // noise
                bytes = (0..<Int.random(in: 1...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 1: // a whole frame of noise
                bytes = ControlProtocol.frame((0..<Int.random(in: 0...200, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            case 2: // a valid frame cut short
                bytes = Array(valid.prefix(Int.random(in: 1..<valid.count, using: &generator)))
            case 3: // a length no server should allocate
                bytes = ControlProtocol.frame([], length: UInt32.random(in: UInt32(ControlProtocol.maximumPayloadBytes + 1)...UInt32.max, using: &generator))
            case 4: // a version this server does not speak
                bytes = ControlProtocol.frame(Array(valid.dropFirst(ControlProtocol.headerBytes)), version: UInt16.random(in: 2...UInt16.max, using: &generator))
            case 5: // a valid frame with some bytes flipped
                bytes = valid
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
            case 6: // out-of-order and malformed messages after a proper hello
                let shapes = ["{\"go\":{\"cell\":9}}", "{\"finished\":{\"cell\":1,\"result\":[]}}", "{\"start\":{}}", "[]", "{\"hello\":{}}", "{}", "{\"bye\":{},\"go\":{}}"]
                bytes = hello + ControlProtocol.frame(Array(shapes.randomElement(using: &generator)!.utf8))
            default: // requests the server must refuse: local-only mechanism, impossible sizes, unknown CPU
                var request = Self.request(mechanism: ["pipe", "tcp", "udp", "no-such"].randomElement(using: &generator)!)
                request.task.options.messageBytes = [-1, 0, 15, 1 << 31, 70_000].randomElement(using: &generator)!
                request.consumerCPU = [nil, -1, 100_000].randomElement(using: &generator)!
                bytes = try hello + ControlProtocol.frame(.start(cell: 3, request: request))
            }
            let outcome = try Self.exchange(bytes, port: server.port)
            #expect(outcome.ended, "kind \(kind): the server neither answered nor closed within 15 s")
            #expect(outcome.unexpected.isEmpty, "kind \(kind): replies other than error/welcome: \(outcome.unexpected)")
            if kind == 7 { #expect(outcome.errors > 0, "kind \(kind): a bad request was not refused") }
            errorsSeen += outcome.errors
            exchanges += 1
            #expect(server.isRunning, "the server died after kind \(kind): \(server.log)")
            if !server.isRunning { return }
        }
        #expect(exchanges >= 24)
        #expect(errorsSeen > 0) // kind 7 alone (run three times) must have been refused

        // A client that connects and says nothing is hung up on after the idle timeout.
        // The server says why before it closes; a server that never hung up leaves receive to time out
        // (the 30 s is only a hang guard), which fails here — no bound on how quickly this machine answers.
        let silent = try Self.connect(port: server.port)
        var reply: ControlMessage?
        var receiveError: Error?
        do { reply = try silent.receive(timeoutSeconds: 30) } catch { receiveError = error }
        #expect(receiveError == nil, "the server did not hang up on a silent client: \(String(describing: receiveError))")
        if case .error(_, let text)? = reply {
            #expect(text.contains("no complete control message within 1"), "\(text)")
        } else {
            Issue.record("expected the idle-timeout error before the hang-up, got \(String(describing: reply))")
        }
        silent.close()

        // Still serving: a real run against it succeeds, and no consumer is left behind.
        let csv = directory + "/after-fuzz.csv"
        let run = try TestSupport.runCLI([
            "run", "--remote", "127.0.0.1:\(server.port)", "--mechanisms", "tcp", "--mode", "latency", "--sizes", "64",
            "--repetitions", "1", "--messages", "2000", "--warmup", "100", "--out", csv, "--quiet",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try TestSupport.readCSV(csv).first?["status"] == "ok")
        #expect(TestSupport.waitFor(seconds: 10) { TestSupport.children(of: server.pid).isEmpty })
        #expect(server.stop() == 128 + SIGTERM, "\(server.log)")
    }

    // MARK: - Two network namespaces

    @Test("Across two network namespaces joined by a veth pair: the same cells, with the server's private address in the CSV")
    func acrossNetworkNamespaces() throws {
        let link = try NamespaceLink.make()
        defer { link.remove() }
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let server = try ServerProcess(["--once"], bind: NamespaceLink.serverAddress, namespace: link.server, logDirectory: directory)
        defer { server.stop() }
        let address = "\(NamespaceLink.serverAddress):\(server.port)"

        // The client's namespace has its own loopback: the server is reachable only over the veth pair.
        let loopback = try link.runInClient(["run", "--remote", "127.0.0.1:\(server.port)", "--mechanisms", "tcp", "--no-plots"])
        #expect(loopback.status == 1 && loopback.stderr.contains("cannot connect"), "\(loopback.stderr)")

        let csv = directory + "/netns.csv"
        let result = try link.runInClient([
            "run", "--remote", address, "--sizes", "64,4K", "--repetitions", "1", "--duration", "0.05", "--warmup", "200",
            "--out", csv, "--quiet", "--no-plots",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try TestSupport.readCSV(csv)
        #expect(rows.count == 8)
        for row in rows {
            #expect(row["status"] == "ok", "\(row["mechanism"]!) \(row["mode"]!) \(row["message_bytes"]!): \(row["status"]!)")
            #expect(row["remote"] == address)
            #expect(row["one_way_p50_ns"] == "")
        }
        #expect(server.waitForExit(seconds: 5) == 0, "\(server.log)")
    }

    // MARK: - Helpers

    /// A request for one short cell, as `run --remote` would send it.
    static func request(mechanism id: String) -> CellRequest {
        var configuration = RunConfiguration(
            mechanisms: [MechanismRegistry.mechanism(id: "tcp")!], modes: [.latency], sizes: [64], placement: TestSupport.placement,
            repetitions: 1, durationSeconds: 0, maximumMessages: 1000, warmupMessages: 10, limits: TestSupport.limits)
        configuration.remote = "test"
        let cell = configuration.cells[0]
        var task = configuration.task(for: cell)
        task.mechanismID = id
        return CellRequest(task: task, consumerCPU: nil, setupTimeoutSeconds: 5, cellTimeoutSeconds: 5)
    }

    static func connectedPair() throws -> (ControlConnection, ControlConnection) {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw IPCError.lastSystemError("socketpair") }
        return (ControlConnection(descriptor: fds[0]), ControlConnection(descriptor: fds[1]))
    }

    static func refusal(_ connection: ControlConnection, accepted: Set<String>? = nil) -> ControlProtocolError? {
        do {
            _ = try connection.receive(timeoutSeconds: 2, accepted: accepted)
            return nil
        } catch let error as ControlProtocolError {
            return error
        } catch {
            return nil
        }
    }

    static func connect(port: UInt16) throws -> ControlConnection {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw IPCError.lastSystemError("socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let error = IPCError.lastSystemError("connect")
            close(fd)
            throw error
        }
        return ControlConnection(descriptor: fd)
    }

    /// Sends `bytes`, closes the sending direction, and reads every reply until the server closes.
    static func exchange(_ bytes: [UInt8], port: UInt16) throws -> (ended: Bool, errors: Int, unexpected: [String]) {
        let connection = try connect(port: port)
        defer { connection.close() }
        try? connection.sendRaw(bytes) // the server may hang up before reading it all
        shutdown(connection.descriptor, Int32(SHUT_WR))
        var errors = 0
        var unexpected: [String] = []
        // A hang guard only: the server answers or closes at once (the sending side is shut down).
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            do {
                guard let reply = try connection.receive(timeoutSeconds: deadline.timeIntervalSinceNow) else { return (true, errors, unexpected) }
                switch reply {
                case .error: errors += 1
                case .welcome: break
                default: unexpected.append("\(reply)")
                }
            } catch is ControlProtocolError {
                return (true, errors, unexpected) // reset by the server
            } catch IPCError.timeout {
                break
            }
        }
        return (false, errors, unexpected)
    }
}

/// An `ipcbench serve` process, its port read from the line it prints, its log in a file.
final class ServerProcess {
    let process = Process()
    let port: UInt16
    let logPath: String
    private var status: Int32?

    init(_ arguments: [String], bind host: String = "127.0.0.1", namespace: String? = nil, logDirectory: String) throws {
        let serve = [TestSupport.binary, "serve", "--bind", "\(host):0"] + arguments
        if let namespace {
            process.executableURL = URL(fileURLWithPath: NamespaceLink.ip!)
            process.arguments = ["netns", "exec", namespace] + serve
        } else {
            process.executableURL = URL(fileURLWithPath: serve[0])
            process.arguments = Array(serve.dropFirst())
        }
        logPath = logDirectory + "/serve-\(UInt32.random(in: 0...UInt32.max)).log"
        guard FileManager.default.createFile(atPath: logPath, contents: nil) else { throw IPCError.setup("cannot create \(logPath)") }
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
        // "ipcbench serve: listening on ADDR:PORT (…)" within 10 s.
        var line: [UInt8] = []
        let fd = out.fileHandleForReading.fileDescriptor
        let deadline = Date().addingTimeInterval(10)
        while !line.contains(UInt8(ascii: "\n")), Date() < deadline {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            var byte: UInt8 = 0
            guard read(fd, &byte, 1) == 1 else { break }
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "listening on \(host):"),
              let port = UInt16(text[range.upperBound...].prefix { $0.isNumber })
        else {
            process.terminate()
            process.waitUntilExit()
            throw IPCError.setup("serve did not report its port: '\(text)' \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
        }
        self.port = port
    }

    var pid: pid_t { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The exit status, or nil if it is still running after `seconds`.
    func waitForExit(seconds: Double) -> Int32? {
        guard TestSupport.waitFor(seconds: seconds, { !process.isRunning }) else { return nil }
        return exitStatus
    }

    /// SIGTERM, then SIGKILL after 5 s; returns the status it ended with (128 + signal when it handled one).
    @discardableResult
    func stop() -> Int32 {
        if process.isRunning {
            kill(pid, SIGTERM)
            if !TestSupport.waitFor(seconds: 5, { !process.isRunning }) { kill(pid, SIGKILL) }
        }
        process.waitUntilExit()
        return exitStatus
    }

    private var exitStatus: Int32 {
        process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }
}

/// Two network namespaces of this test's own, joined by a veth pair with private addresses; removed
/// (with the veth pair) by `remove()`. `make()` cancels the test, saying why, where namespaces
/// cannot be made.
struct NamespaceLink {
    static let serverAddress = "10.213.0.1"
    static let clientAddress = "10.213.0.2"
    static let ip: String? = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }

    let server: String
    let client: String

    static func make() throws -> NamespaceLink {
        guard let ip else { try Test.cancel("skipped: `ip` (iproute2) is not installed; scripts/setup-system installs it") }
        guard geteuid() == 0 else { try Test.cancel("skipped: creating network namespaces (ip netns add) needs root; running as uid \(geteuid())") }
        let id = getpid()
        let link = NamespaceLink(server: "ipcbench-test-\(id)-s", client: "ipcbench-test-\(id)-c")
        let probe = try run(ip, ["netns", "add", link.server])
        guard probe.status == 0 else {
            try Test.cancel("skipped: network namespaces are not permitted here: ip netns add: \(probe.output.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        do {
            let (a, b) = ("ipcbs\(id)", "ipcbc\(id)")
            for arguments in [
                ["netns", "add", link.client],
                ["link", "add", a, "type", "veth", "peer", "name", b],
                ["link", "set", a, "netns", link.server], ["link", "set", b, "netns", link.client],
                ["-n", link.server, "addr", "add", "\(serverAddress)/24", "dev", a], ["-n", link.client, "addr", "add", "\(clientAddress)/24", "dev", b],
                ["-n", link.server, "link", "set", a, "up"], ["-n", link.client, "link", "set", b, "up"],
                ["-n", link.server, "link", "set", "lo", "up"], ["-n", link.client, "link", "set", "lo", "up"],
            ] {
                let result = try run(ip, arguments)
                guard result.status == 0 else {
                    _ = try? run(ip, ["link", "del", a]) // if it never reached a namespace
                    throw IPCError.setup("ip \(arguments.joined(separator: " ")): \(result.output)")
                }
            }
        } catch {
            link.remove()
            throw error
        }
        return link
    }

    /// Deleting a namespace deletes the veth end inside it, and with it the pair.
    func remove() {
        guard let ip = Self.ip else { return }
        for namespace in [server, client] { _ = try? Self.run(ip, ["netns", "del", namespace]) }
    }

    func runInClient(_ arguments: [String]) throws -> TestSupport.CommandResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.ip!)
        process.arguments = ["netns", "exec", client, TestSupport.binary] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return TestSupport.CommandResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    }

    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
