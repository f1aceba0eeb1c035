import Foundation
import Glibc
@testable import IPCBench
import Testing

/// Set-up code holds each new socket in an `OwnedDescriptor` until it hands it to its endpoint, so a
/// set-up that fails half-way closes what it opened. Each failure below is repeated many times: one
/// leaked descriptor per failure shows as hundreds more open descriptors, far above what anything
/// else in the process opens meanwhile.
@Suite("Descriptor ownership", .serialized)
struct DescriptorOwnershipTests {
    static let attempts = 200

    static func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.count ?? 0
    }

    /// Runs `failingSetUp` `attempts` times, expecting it to throw each time, and returns how many
    /// more descriptors are open afterwards.
    static func growth(_ label: String, _ failingSetUp: () throws -> Void) -> Int {
        let before = openDescriptors()
        for _ in 0..<attempts {
            do {
                try failingSetUp()
                Issue.record("\(label): the set-up did not fail")
                return 0
            } catch {}
        }
        return openDescriptors() - before
    }

    @Test("Socket set-ups that fail (no listener, refused, address not local) leave no descriptor open")
    func failedSetUpsCloseTheirSockets() throws {
        let directory = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let options = EndpointOptions(mode: .latency, messageBytes: 64, variant: "")
        let missing = Rendezvous(parameters: ["path": directory + "/nobody.sock", "producerPath": directory + "/p.sock"])
        let refused = [NetworkParameters.port: "1"]
        let foreign = Rendezvous(parameters: [NetworkParameters.bindAddress: "203.0.113.7"])

        let cases: [(String, () throws -> Void)] = [
            ("unix-stream connect, no listener", { _ = try UnixStreamMechanism().connect(missing, published: [:], options: options) }),
            ("unix-dgram connect, no listener", { _ = try UnixDatagramMechanism(.datagram).connect(missing, published: [:], options: options) }),
            ("tcp connect, refused", { _ = try TCPMechanism().connect(Rendezvous(), published: refused, options: options) }),
            ("tcp listen, address not local", { _ = try TCPMechanism().listen(foreign, options: options) }),
            ("udp listen, address not local", { _ = try UDPMechanism().listen(foreign, options: options) }),
        ]
        for (label, setUp) in cases {
            let grown = Self.growth(label, setUp)
            #expect(grown < Self.attempts / 4, "\(label): \(grown) more descriptors open after \(Self.attempts) failures")
        }
    }

    @Test("release() hands the descriptor on open; dropping the owner closes it")
    func releaseKeepsDropCloses() throws {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw IPCError.lastSystemError("pipe") }
        defer { close(ends[1]) }
        let owner = OwnedDescriptor(ends[0])
        let released = owner.release()
        #expect(released == ends[0])
        #expect(fcntl(released, F_GETFD) >= 0, "a released descriptor must stay open")
        do {
            _ = OwnedDescriptor(released)
        }
        // The read end is closed: writing to the pipe now fails with EPIPE (SIGPIPE ignored meanwhile).
        var byte: UInt8 = 0
        let previous = signal(SIGPIPE, SIG_IGN)
        defer { signal(SIGPIPE, previous) }
        #expect(write(ends[1], &byte, 1) == -1 && errno == EPIPE, "dropping the owner did not close the read end")
    }
}
