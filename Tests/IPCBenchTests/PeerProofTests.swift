import Foundation
import Glibc
import IPCBench
import Synchronization
import Testing

/// A local user who connects to a cell's TCP port first must not take the producer's place
/// (issue 17, item 8): the consumer accepts only a connection that sends the cell's secret.
@Suite("Peers prove they belong to the cell")
struct PeerProofTests {
    /// Listening IPv4 loopback ports, from /proc/net/tcp (state 0A = LISTEN).
    static func listeningLoopbackPorts() -> Set<UInt16> {
        guard let text = try? String(contentsOfFile: "/proc/net/tcp", encoding: .utf8) else { return [] }
        var ports: Set<UInt16> = []
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3, fields[3] == "0A" else { continue }
            let local = fields[1].split(separator: ":")
            guard local.count == 2, local[0] == "0100007F", let port = UInt16(local[1], radix: 16) else { continue }
            ports.insert(port)
        }
        return ports
    }

    /// Bound IPv4 loopback UDP ports, from /proc/net/udp.
    static func boundLoopbackUDPPorts() -> Set<UInt16> {
        guard let text = try? String(contentsOfFile: "/proc/net/udp", encoding: .utf8) else { return [] }
        var ports: Set<UInt16> = []
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 1 else { continue }
            let local = fields[1].split(separator: ":")
            guard local.count == 2, local[0] == "0100007F", let port = UInt16(local[1], radix: 16) else { continue }
            ports.insert(port)
        }
        return ports
    }

    /// Sends datagrams a consumer might mistake for its producer's: garbage of several lengths, and a
    /// hello-shaped header followed by a wrong secret.
    static func sprayDatagrams(_ fd: Int32, to port: UInt16) -> Int {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var hello = [UInt8](repeating: 0, count: MessageFormat.headerBytes + PeerSecret.length)
        hello.withUnsafeMutableBytes { $0.storeBytes(of: (MessageFormat.endMarker | 1 << 61).littleEndian, as: UInt64.self) }
        var sent = 0
        for datagram in [[UInt8](repeating: 0x41, count: 16), [UInt8](repeating: 0, count: 64), hello, [UInt8](repeating: 0x42, count: 48)] {
            let result = datagram.withUnsafeBytes { bytes in
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            if result > 0 { sent += 1 }
        }
        return sent
    }

    @Test("A stranger spraying datagrams at every new loopback UDP port does not break any udp cell, pair or fan-in server",
          arguments: [[], ["--clients", "3"]])
    func strangerDatagramsAreDropped(shape: [String]) throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let existing = Self.boundLoopbackUDPPorts()
        let stop = Atomic<Bool>(false)
        let sprayed = Atomic<Int>(0)
        let attacker = Thread {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { return }
            defer { close(fd) }
            while !stop.load(ordering: .relaxed) {
                // Every port that appeared since the test began, again and again: before and after
                // the consumer has found its producer.
                for port in Self.boundLoopbackUDPPorts().subtracting(existing) {
                    sprayed.add(Self.sprayDatagrams(fd, to: port), ordering: .relaxed)
                }
            }
        }
        attacker.start()
        let result = try TestSupport.runCLI(
            ["run", "--mechanisms", "udp", "--sizes", "16,48", "--mode", "latency,throughput", "--placements", "cross-cpu",
             "--repetitions", "3", "--messages", "500", "--cell-timeout", "20", "--quiet", "--out", scratch + "/udp.csv"] + shape)
        stop.store(true, ordering: .relaxed)
        Thread.sleep(forTimeInterval: 0.1)
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try TestSupport.readCSV(scratch + "/udp.csv")
        #expect(rows.count == 4 && rows.allSatisfy { $0["status"] == "ok" && $0["clients"] == (shape.isEmpty ? "1" : "3") },
                "\(rows.map { $0["status"] ?? "" })")
        #expect(sprayed.load(ordering: .relaxed) >= 1, "the stranger never got to send")
    }

    @Test("Across run --remote too: a stranger on the server's host connecting to or spraying every new port breaks no cell", arguments: ["tcp", "udp"])
    func strangerAgainstRemoteCell(mechanism: String) throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let server = try ServerProcess([], logDirectory: scratch)
        defer { server.stop() }
        let existingTCP = Self.listeningLoopbackPorts(), existingUDP = Self.boundLoopbackUDPPorts()
        let stop = Atomic<Bool>(false)
        let attempts = Atomic<Int>(0)
        let connections = Mutex<[Int32]>([])
        let attacker = Thread {
            let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(udp) }
            var tried: Set<UInt16> = existingTCP
            while !stop.load(ordering: .relaxed) {
                for port in Self.listeningLoopbackPorts().subtracting(tried) {
                    tried.insert(port)
                    if let fd = Self.connectAndSendGarbage(port) {
                        attempts.add(1, ordering: .relaxed)
                        connections.withLock { $0.append(fd) }
                    }
                }
                for port in Self.boundLoopbackUDPPorts().subtracting(existingUDP) {
                    attempts.add(Self.sprayDatagrams(udp, to: port), ordering: .relaxed)
                }
            }
        }
        attacker.start()
        let result = try TestSupport.runCLI(
            ["run", "--remote", "127.0.0.1:\(server.port)", "--mechanisms", mechanism, "--sizes", "64", "--mode", "latency,throughput",
             "--repetitions", "3", "--messages", "500", "--warmup", "50", "--cell-timeout", "20", "--quiet", "--out", scratch + "/r.csv"])
        stop.store(true, ordering: .relaxed)
        Thread.sleep(forTimeInterval: 0.1)
        connections.withLock { fds in fds.forEach { close($0) } }
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try TestSupport.readCSV(scratch + "/r.csv")
        #expect(rows.count == 2 && rows.allSatisfy { $0["status"] == "ok" }, "\(rows.map { $0["status"] ?? "" })")
        #expect(attempts.load(ordering: .relaxed) >= 1, "the stranger never got to the consumer's port")
    }

    static func connectAndSendGarbage(_ port: UInt16) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        let garbage = [UInt8](repeating: 0x41, count: PeerSecret.length)
        _ = garbage.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        return fd
    }

    @Test("A stranger polling for new loopback listeners and connecting first does not break any tcp cell, pair or fan-in server",
          arguments: [[], ["--clients", "3"]])
    func strangerConnectingFirstIsRefused(shape: [String]) throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let existing = Self.listeningLoopbackPorts()
        let stop = Atomic<Bool>(false)
        let connections = Mutex<[Int32]>([])
        let attacker = Thread {
            var tried: Set<UInt16> = existing
            while !stop.load(ordering: .relaxed) {
                for port in Self.listeningLoopbackPorts().subtracting(tried) {
                    tried.insert(port)
                    if let fd = Self.connectAndSendGarbage(port) { connections.withLock { $0.append(fd) } }
                }
            }
        }
        attacker.start()
        let result = try TestSupport.runCLI(
            ["run", "--mechanisms", "tcp", "--sizes", "64", "--mode", "latency,throughput", "--placements", "cross-cpu",
             "--repetitions", "5", "--messages", "500", "--cell-timeout", "20", "--quiet", "--out", scratch + "/tcp.csv"] + shape)
        stop.store(true, ordering: .relaxed)
        Thread.sleep(forTimeInterval: 0.1)
        let strangers = connections.withLock { fds in
            defer { fds.forEach { close($0) } }
            return fds.count
        }
        #expect(result.status == 0, "\(result.stderr)")
        let rows = try TestSupport.readCSV(scratch + "/tcp.csv")
        #expect(rows.count == 2 && rows.allSatisfy { $0["status"] == "ok" && $0["clients"] == (shape.isEmpty ? "1" : "3") },
                "\(rows.map { $0["status"] ?? "" })")
        // The attack must have happened for the test to mean anything (it connects within
        // microseconds of each listen; the producer is a process start away).
        #expect(strangers >= 1, "the stranger never got to connect")
    }
}
