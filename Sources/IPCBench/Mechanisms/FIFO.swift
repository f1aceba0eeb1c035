import Glibc
import SystemPackage

/// Named pipes (FIFOs), one per direction, created in the cell's private directory and opened by
/// path in each worker, as unrelated processes would.
public struct FIFOMechanism: FanInMechanism {
    public init() {}
    public let id = "fifo"
    public let summary = "named FIFO pair (mkfifo), opened by path by each worker"

    public func variants(for mode: Mode) -> [String] { ["write/read"] }
    public func copies(for variant: String) -> Int { 2 }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { WaitStrategy.allCases }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        let toConsumer = workspace + "/to-consumer.fifo"
        let toProducer = workspace + "/to-producer.fifo"
        for path in [toConsumer, toProducer] where mkfifo(path, 0o600) != 0 {
            throw IPCError.lastSystemError("mkfifo", path)
        }
        return Rendezvous(parameters: ["to-consumer": toConsumer, "to-producer": toProducer])
    }

    // Opening a FIFO blocks until the other end opens it, so both sides open in the same order
    // (to-consumer first) and the consumer does it in accept(), after the producer has been started.
    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        let toConsumer = try rendezvous.require("to-consumer")
        let toProducer = try rendezvous.require("to-producer")
        return ImmediateListener {
            let readEnd = try Self.open(toConsumer, O_RDONLY)
            let writeEnd = try Self.open(toProducer, O_WRONLY)
            return try StreamEndpoint(readDescriptor: readEnd, writeDescriptor: writeEnd, options: options)
        }
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        let writeEnd = try Self.open(rendezvous.require("to-consumer"), O_WRONLY)
        let readEnd = try Self.open(rendezvous.require("to-producer"), O_RDONLY)
        return try StreamEndpoint(readDescriptor: readEnd, writeDescriptor: writeEnd, options: options)
    }

    public let fanInShape = "one request FIFO that every client writes to (each message in one write of at most PIPE_BUF bytes, which the kernel keeps whole), and a reply FIFO per client"

    /// Only writes of up to PIPE_BUF bytes are atomic: larger messages from several clients could
    /// interleave in the request FIFO, and no reader could take them apart again.
    public func fanInUnavailableReason(variant: String, messageBytes: Int) -> String? {
        guard messageBytes > Self.atomicWriteBytes else { return nil }
        return "fifo fan-in: only writes of up to PIPE_BUF (\(Self.atomicWriteBytes) bytes) reach a FIFO whole; larger messages from several clients could interleave"
    }

    static let atomicWriteBytes = Int(PIPE_BUF)

    public func prepareFanIn(workspace: String, clients: Int, options: EndpointOptions) throws -> FanInRendezvous {
        let requests = workspace + "/to-consumer.fifo"
        var server = Rendezvous(parameters: ["to-consumer": requests])
        var paths = [requests]
        for client in 0..<clients {
            let replies = workspace + "/to-producer-\(client).fifo"
            server.parameters["to-producer-\(client)"] = replies
            paths.append(replies)
        }
        for path in paths where mkfifo(path, 0o600) != 0 {
            throw IPCError.lastSystemError("mkfifo", path)
        }
        let clientRendezvous = (0..<clients).map { client in
            Rendezvous(parameters: ["to-consumer": requests, "to-producer": server.parameters["to-producer-\(client)"]!])
        }
        return FanInRendezvous(server: server, clients: clientRendezvous)
    }

    /// Opens nothing until `accept()`: opening a FIFO waits for its other end, and the clients open
    /// theirs in the same order (the request FIFO, then their reply FIFO).
    public func listenForClients(_ rendezvous: Rendezvous, clients: Int, options: EndpointOptions) throws -> any ServerListener {
        FIFOServerListener(requests: try rendezvous.require("to-consumer"),
                           replies: try (0..<clients).map { try rendezvous.require("to-producer-\($0)") }, options: options)
    }

    static func open(_ path: String, _ flags: Int32) throws -> Int32 {
        do throws(Errno) {
            return try SystemCall.retrying { Glibc.open(path, flags | O_CLOEXEC) }
        } catch {
            throw IPCError.system("open", error, path)
        }
    }
}

struct FIFOServerListener: ServerListener {
    let requests: String
    let replies: [String]
    let options: EndpointOptions
    let published: [String: String] = [:]

    func accept() throws -> any ServerEndpoint {
        var opened: [Int32] = []
        do {
            let requestEnd = try FIFOMechanism.open(requests, O_RDONLY)
            opened.append(requestEnd)
            for path in replies { opened.append(try FIFOMechanism.open(path, O_WRONLY)) }
            return FIFOServer(requestEnd: requestEnd, replyEnds: Array(opened.dropFirst()), messageBytes: options.messageBytes)
        } catch {
            opened.forEach { _ = Glibc.close($0) }
            throw error
        }
    }
}

/// The server of a FIFO fan-in: every client's messages arrive whole (one write each, at most
/// PIPE_BUF bytes) in the one request FIFO; the client number in the header routes the reply.
final class FIFOServer: ServerEndpoint {
    private let requestEnd: Int32
    private let replyEnds: [Int32]
    private let sendBuffer: PrivateBuffer
    private let receiveBuffer: PrivateBuffer

    init(requestEnd: Int32, replyEnds: [Int32], messageBytes: Int) {
        self.requestEnd = requestEnd
        self.replyEnds = replyEnds
        sendBuffer = PrivateBuffer(byteCount: messageBytes)
        receiveBuffer = PrivateBuffer(byteCount: messageBytes)
    }

    /// The route is the client number the header carries (out of range: the harness drops it); nil
    /// once every client has closed its end.
    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Int? {
        let message = receiveBuffer.prefix(size)
        guard try Descriptor.readExactly(requestEnd, into: message) else { return nil }
        consume(UnsafeRawBufferPointer(message))
        return MessageFormat.client(ofSequence: MessageFormat.sequence(of: UnsafeRawBufferPointer(message)))
    }

    func send(to route: Int, size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let message = sendBuffer.prefix(size)
        fill(message)
        try Descriptor.writeAll(replyEnds[route], UnsafeRawBufferPointer(message))
    }

    func close() {
        _ = Glibc.close(requestEnd)
        replyEnds.forEach { _ = Glibc.close($0) }
    }
}
