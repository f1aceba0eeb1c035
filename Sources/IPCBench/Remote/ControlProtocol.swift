import Foundation
import Glibc
import SystemPackage

/// The control connection between `ipcbench run --remote` (client) and `ipcbench serve` (server):
/// a TCP connection carrying frames
///
///     offset 0: magic "IPCB"
///     offset 4: protocol version (UInt16, big-endian)
///     offset 6: payload length in bytes (UInt32, big-endian), at most `maximumPayloadBytes`
///     offset 10: payload: one `ControlMessage` as JSON
///
/// A session: `hello` → `welcome`; then per repetition of a cell `start` → `bound` (the consumer's
/// data port) → `ready` → `go` (the barrier, sent once the client's producer is ready too) →
/// `finished` (the consumer's result); finally `bye`. Any step may be answered with `error`.
public enum ControlProtocol {
    public static let version: UInt16 = 1
    public static let magic: [UInt8] = Array("IPCB".utf8)
    public static let headerBytes = 10
    /// Large enough for a consumer result with its latency histogram, small enough that a hostile
    /// length cannot make the server allocate much.
    public static let maximumPayloadBytes = 1 << 20
    /// `ipcbench serve`'s default port.
    public static let defaultPort: UInt16 = 47207

    /// One frame around `payload`; the version and length are parameters so tests can forge bad frames.
    public static func frame(_ payload: [UInt8], version: UInt16 = version, length: UInt32? = nil) -> [UInt8] {
        let length = length ?? UInt32(payload.count)
        return magic + [UInt8(version >> 8), UInt8(version & 0xFF)]
            + [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)]
            + payload
    }

    public static func frame(_ message: ControlMessage) throws -> [UInt8] {
        frame(Array(try JSONEncoder().encode(message)))
    }
}

/// What the server tells a client about itself.
public struct ServerInfo: Codable, Sendable, Equatable {
    public var toolVersion: String
    public var hostname: String
    /// CPUs a consumer may be pinned to there.
    public var allowedCPUs: [Int]
    /// The CPU consumers run on unless the client names one.
    public var defaultConsumerCPU: Int?
}

/// One repetition of one cell, as the client asks the server to run its consumer.
public struct CellRequest: Codable, Sendable {
    /// The cell's task; the server fills in role, CPU and rendezvous.
    public var task: WorkerTask
    /// nil: the server's default consumer CPU.
    public var consumerCPU: Int?
    public var setupTimeoutSeconds: Double
    public var cellTimeoutSeconds: Double
    /// The repetition's PeerSecret, which the server gives its consumer as a local pair's parent does
    /// (in the environment), so only the client's producer is accepted. It crosses the network in the
    /// control connection's clear text: it keeps out other users of either host, not an eavesdropper
    /// on the link. nil from clients older than this field: the consumer then accepts any producer.
    public var peerSecret: String?

    public init(task: WorkerTask, consumerCPU: Int?, setupTimeoutSeconds: Double, cellTimeoutSeconds: Double, peerSecret: String? = nil) {
        self.peerSecret = peerSecret
        self.task = task
        self.consumerCPU = consumerCPU
        self.setupTimeoutSeconds = setupTimeoutSeconds
        self.cellTimeoutSeconds = cellTimeoutSeconds
    }
}

/// The messages of the control protocol. Replies about a repetition carry the `cell` number of its
/// `start`, so a late reply to an abandoned repetition is recognised and skipped.
public enum ControlMessage: Codable, Sendable {
    case hello(client: String)
    case welcome(ServerInfo)
    case start(cell: Int, request: CellRequest)
    /// The consumer is bound: the producer may connect to this port on the server's address.
    case bound(cell: Int, port: UInt16)
    /// The consumer's endpoint is open and pinned; `cpu` is where it runs.
    case ready(cell: Int, cpu: Int)
    case go(cell: Int)
    case finished(cell: Int, result: WorkerResult)
    /// `cell` is nil for errors about the connection or a message that was not understood.
    case error(cell: Int?, message: String)
    case bye

    /// For error messages: what kind of message this is.
    /// The repetition a per-repetition message belongs to.
    var cell: Int? {
        switch self {
        case let .ready(cell, _), let .go(cell): cell
        case let .error(cell, _): cell
        default: nil
        }
    }

    var name: String {
        switch self {
        case .hello: "hello"
        case .welcome: "welcome"
        case .start: "start"
        case .bound: "bound"
        case .ready: "ready"
        case .go: "go"
        case .finished: "finished"
        case .error: "error"
        case .bye: "bye"
        }
    }
}

/// The name of a message (its one top-level key), read before the body is decoded.
private struct MessageKind: Decodable {
    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    let name: String?

    init(from decoder: Decoder) throws {
        let keys = try decoder.container(keyedBy: Key.self).allKeys
        name = keys.count == 1 ? keys[0].stringValue : nil
    }
}

/// Why a frame could not be read.
public enum ControlProtocolError: Error, CustomStringConvertible, Equatable {
    /// The byte stream cannot be trusted any more (bad magic, unknown version, oversized or truncated
    /// frame): answer if possible, then close the connection.
    case framing(String)
    /// A well-formed frame whose payload is not a message: answer, and the connection goes on.
    case message(String)

    public var description: String {
        switch self {
        case let .framing(text), let .message(text): text
        }
    }
}

/// One end of a control connection: whole frames in and out, every wait bounded.
public final class ControlConnection {
    public let descriptor: Int32
    private var closed = false

    /// Takes ownership of a connected stream socket. Sends time out after `sendTimeoutSeconds` so a
    /// peer that stops reading cannot block this side for ever.
    public init(descriptor: Int32, sendTimeoutSeconds: Int = 10) {
        self.descriptor = descriptor
        var timeout = timeval(tv_sec: sendTimeoutSeconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        // Control frames are small and each waits for an answer: do not let Nagle hold them back.
        var on: Int32 = 1
        setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close() }

    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(descriptor)
    }

    public func send(_ message: ControlMessage) throws {
        try sendRaw(ControlProtocol.frame(message))
    }

    /// Writes bytes as they are (tests use this to send forged frames).
    public func sendRaw(_ bytes: [UInt8]) throws {
        // After close the descriptor number may belong to something else: never write to it.
        guard !closed else { throw IPCError.peerClosed("the control connection is closed") }
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a peer that has gone away is an error here, not a SIGPIPE.
            do throws(Errno) {
                offset += try SystemCall.retrying {
                    bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
                }
            } catch .wouldBlock {
                throw IPCError.timeout("the peer stopped reading the control connection")  // SO_SNDTIMEO passed
            } catch {
                throw IPCError.system("send", error, "control connection")
            }
        }
    }

    /// The next message, or nil if the peer closed the connection cleanly between frames.
    /// Throws `ControlProtocolError` for bad input (including a message not in `accepted`, which is
    /// refused before its body is decoded), `IPCError.timeout` after `timeoutSeconds` and
    /// `IPCError.interrupted` on Ctrl-C.
    public func receive(timeoutSeconds: Double, accepted: Set<String>? = nil) throws -> ControlMessage? {
        try receive(deadline: Deadline(seconds: timeoutSeconds), accepted: accepted)
    }

    func receive(deadline: Deadline, accepted: Set<String>? = nil) throws -> ControlMessage? {
        guard !closed else { throw IPCError.peerClosed("the control connection is closed") }
        var header = [UInt8](repeating: 0, count: ControlProtocol.headerBytes)
        guard try read(into: &header, deadline: deadline, startOfFrame: true) else { return nil }
        guard Array(header[0..<4]) == ControlProtocol.magic else {
            throw ControlProtocolError.framing("not an ipcbench control frame (bad magic); expected \"IPCB\", protocol version \(ControlProtocol.version)")
        }
        let version = UInt16(header[4]) << 8 | UInt16(header[5])
        guard version == ControlProtocol.version else {
            throw ControlProtocolError.framing("unsupported protocol version \(version); this side speaks version \(ControlProtocol.version)")
        }
        let length = Int(header[6]) << 24 | Int(header[7]) << 16 | Int(header[8]) << 8 | Int(header[9])
        guard length <= ControlProtocol.maximumPayloadBytes else {
            throw ControlProtocolError.framing("frame of \(length) bytes exceeds the limit of \(ControlProtocol.maximumPayloadBytes) bytes")
        }
        var payload = [UInt8](repeating: 0, count: length)
        _ = try read(into: &payload, deadline: deadline, startOfFrame: false)
        let data = Data(payload)
        if let accepted {
            let kind = try? JSONDecoder().decode(MessageKind.self, from: data)
            guard let name = kind?.name else {
                throw ControlProtocolError.message("unreadable control message (\(length) bytes): expected a JSON object naming one message")
            }
            guard accepted.contains(name) else {
                throw ControlProtocolError.message("unexpected control message '\(name.prefix(40))'; expected one of: \(accepted.sorted().joined(separator: ", "))")
            }
        }
        do {
            return try JSONDecoder().decode(ControlMessage.self, from: data)
        } catch {
            throw ControlProtocolError.message("unreadable control message (\(length) bytes): not a known message of protocol version \(ControlProtocol.version)")
        }
    }

    /// Fills `buffer`, polling in short slices so the deadline and Ctrl-C are noticed. Returns false
    /// on end-of-file before the first byte of a frame; end-of-file anywhere else is a truncated frame.
    private func read(into buffer: inout [UInt8], deadline: Deadline, startOfFrame: Bool) throws -> Bool {
        var offset = 0
        while offset < buffer.count {
            if Interruption.requested { throw IPCError.interrupted }
            let now = MonotonicClock.now()
            guard now < deadline.nanoseconds else {
                throw IPCError.timeout("no complete control message within \(deadline.seconds) s")
            }
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            do throws(Errno) {
                // Interrupted: back to the top, where Ctrl-C and the deadline are looked at.
                guard try SystemCall.once({ poll(&entry, 1, Int32(min(100, (deadline.nanoseconds - now) / 1_000_000 + 1))) }) > 0 else { continue }
            } catch .interrupted {
                continue
            } catch {
                throw IPCError.system("poll", error, "control connection")
            }
            let count: Int
            do throws(Errno) {
                count = try SystemCall.retrying { buffer.withUnsafeMutableBytes { Glibc.recv(descriptor, $0.baseAddress! + offset, $0.count - offset, 0) } }
            } catch .wouldBlock {
                continue
            } catch .connectionReset {
                if offset == 0, startOfFrame { return false }
                throw ControlProtocolError.framing("truncated control frame: the connection was reset")
            } catch {
                throw IPCError.system("recv", error, "control connection")
            }
            if count == 0 {
                if offset == 0, startOfFrame { return false }
                throw ControlProtocolError.framing("truncated control frame: the connection closed after \(offset) of \(buffer.count) bytes")
            }
            offset += count
        }
        return true
    }
}
