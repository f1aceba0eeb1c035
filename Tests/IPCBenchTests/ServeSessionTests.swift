import Foundation
import Glibc
import IPCBench
import Synchronization
import Testing

/// Issue 17, item 9: no client can hold `ipcbench serve` for the others.
@Suite("serve: clients do not hold each other up", .serialized)
struct ServeSessionTests {
    /// Runs a one-repetition remote tcp cell; nil if it has not finished after `seconds` (then killed).
    static func remoteRun(port: UInt16, directory: String, seconds: Double) throws -> (status: Int32, rows: [[String: String]])? {
        let csv = directory + "/remote-\(UInt32.random(in: 0...UInt32.max)).csv"
        let run = Process()
        run.executableURL = URL(fileURLWithPath: TestSupport.binary)
        run.arguments = ["run", "--remote", "127.0.0.1:\(port)", "--mechanisms", "tcp", "--mode", "latency", "--sizes", "64",
                         "--repetitions", "1", "--messages", "2000", "--warmup", "100", "--out", csv, "--quiet", "--no-plots"]
        run.standardOutput = FileHandle.nullDevice
        run.standardError = FileHandle.nullDevice
        try run.run()
        guard TestSupport.waitFor(seconds: seconds, { !run.isRunning }) else {
            kill(run.processIdentifier, SIGKILL)
            run.waitUntilExit()
            return nil
        }
        return (run.terminationStatus, try TestSupport.readCSV(csv))
    }

    @Test("A silent connection and a client that only keeps saying hello do not hold up another client's run")
    func idleClientsHoldNobodyUp() throws {
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The default idle timeout (60 s): one client at a time would keep the run below waiting at
        // least that long, and for ever behind the client that greets every 0.2 s.
        let server = try ServerProcess([], logDirectory: directory)
        defer { server.stop() }
        let silent = try RemoteTests.connect(port: server.port)
        defer { silent.close() }
        let chatty = try RemoteTests.connect(port: server.port)
        defer { chatty.close() }
        let stop = Atomic<Bool>(false)
        nonisolated(unsafe) let greeting = chatty  // used by the greeter thread alone from here on
        let greeter = Thread {
            while !stop.load(ordering: .relaxed) {
                if (try? greeting.send(.hello(client: "holder"))) == nil { return }
                usleep(200_000)
            }
        }
        greeter.start()
        defer { stop.store(true, ordering: .relaxed) }
        usleep(300_000)

        // 45 s is a hang guard only, well below the 60 s the old server would have made it wait.
        let outcome = try Self.remoteRun(port: server.port, directory: directory, seconds: 45)
        let finished = try #require(outcome, "the run was held up by the idle clients: \(server.log)")
        #expect(finished.status == 0)
        #expect(finished.rows.count == 1 && finished.rows.first?["status"] == "ok", "\(finished.rows)")

        // Two clients at once: their repetitions take turns, and both runs succeed.
        let results = Mutex<[(status: Int32, rows: [[String: String]])?]>([])
        let port = server.port
        let runs = (0..<2).map { _ in
            Thread {
                let outcome = try? Self.remoteRun(port: port, directory: directory, seconds: 45)
                results.withLock { $0.append(outcome ?? nil) }
            }
        }
        runs.forEach { $0.start() }
        #expect(TestSupport.waitFor(seconds: 50) { results.withLock { $0.count } == 2 })
        for outcome in results.withLock({ $0 }) {
            #expect(outcome?.status == 0 && outcome?.rows.first?["status"] == "ok", "\(String(describing: outcome)): \(server.log)")
        }
    }

    @Test("A greeted client that starts nothing is hung up on after the idle timeout, however often it says hello")
    func helloDoesNotResetTheIdleTimeout() throws {
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try ServerProcess(["--idle-timeout", "1"], logDirectory: directory)
        defer { server.stop() }
        let client = try RemoteTests.connect(port: server.port)
        defer { client.close() }
        // Hello every 0.2 s for up to 20 s: the server must end the session by itself (after 1 s).
        var hungUpWith: String?
        let deadline = Date().addingTimeInterval(20)
        greeting: while Date() < deadline {
            guard (try? client.send(.hello(client: "holder"))) != nil else { break }
            while true {
                switch try? client.receive(timeoutSeconds: 0.2) {
                case .welcome?: continue
                case .error(_, let text)?:
                    hungUpWith = text
                    break greeting
                case nil, .some:
                    continue greeting
                }
            }
        }
        #expect(hungUpWith?.contains("no complete control message within 1") == true, "\(hungUpWith ?? "never hung up")")
    }

    @Test("A set-up timeout over 60 s is refused, so a consumer's buffers are not held for an hour waiting for a go")
    func longSetupIsRefused() throws {
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try ServerProcess([], logDirectory: directory)
        defer { server.stop() }
        let client = try RemoteTests.connect(port: server.port)
        defer { client.close() }
        try client.send(.hello(client: "test"))
        guard case .welcome? = try client.receive(timeoutSeconds: 5) else {
            Issue.record("no welcome")
            return
        }
        var request = RemoteTests.request(mechanism: "tcp")
        request.setupTimeoutSeconds = 3600
        try client.send(.start(cell: 1, request: request))
        guard case .error(1, let text)? = try client.receive(timeoutSeconds: 5) else {
            Issue.record("a one-hour set-up was not refused")
            return
        }
        #expect(text.contains("set-up timeout must be between 0 and 60 s"), "\(text)")
        #expect(TestSupport.children(of: server.pid).isEmpty, "a consumer was started")
    }

    @Test("The 17th client connected at once is told the server is busy; the 16 others are served")
    func sessionLimit() throws {
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = try ServerProcess([], logDirectory: directory)
        defer { server.stop() }
        var clients: [ControlConnection] = []
        defer { clients.forEach { $0.close() } }
        for _ in 0..<16 {
            let client = try RemoteTests.connect(port: server.port)
            try client.send(.hello(client: "test"))
            guard case .welcome? = try client.receive(timeoutSeconds: 5) else {
                Issue.record("client \(clients.count + 1) was not welcomed")
                return
            }
            clients.append(client)
        }
        let extra = try RemoteTests.connect(port: server.port)
        defer { extra.close() }
        guard case .error(nil, let text)? = try extra.receive(timeoutSeconds: 5) else {
            Issue.record("the 17th client was not refused")
            return
        }
        #expect(text.contains("the server is busy: 16 clients are connected"), "\(text)")
    }
}
