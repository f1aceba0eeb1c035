import CIPCShim
import Glibc
import SystemPackage

/// `--clients` on POSIX message queues: one request queue every client sends to, and a reply queue
/// per client.
extension POSIXMessageQueueMechanism: FanInMechanism {
    public var fanInShape: String {
        "one request queue that every client sends to, and a reply queue per client (the client number in each header says which)"
    }

    public func prepareFanIn(workspace: String, clients: Int, options: EndpointOptions) throws -> FanInRendezvous {
        let depth = Self.depth(messageBytes: options.messageBytes, queues: clients + 1)
        var server = Rendezvous()
        do {
            server.parameters["to-consumer"] = try Self.createFresh("to-consumer", depth: depth, messageBytes: options.messageBytes)
            for client in 0..<clients {
                server.parameters["to-producer-\(client)"] = try Self.createFresh("to-producer", depth: depth, messageBytes: options.messageBytes)
            }
        } catch {
            teardown(server)
            throw error
        }
        let clientRendezvous = (0..<clients).map { client in
            Rendezvous(parameters: ["to-consumer": server.parameters["to-consumer"]!, "to-producer": server.parameters["to-producer-\(client)"]!])
        }
        return FanInRendezvous(server: server, clients: clientRendezvous)
    }

    public func listenForClients(_ rendezvous: Rendezvous, clients: Int, options: EndpointOptions) throws -> any ServerListener {
        let requests = try rendezvous.require("to-consumer")
        let replies = try (0..<clients).map { try rendezvous.require("to-producer-\($0)") }
        let server = try POSIXMessageQueueServer(requests: requests, replies: replies, options: options)
        return ImmediateServerListener(server: server)
    }
}

/// The server of a fan-in cell: every client's requests arrive on one queue, each reply goes to the
/// queue of the client the request's header names. Blocking descriptors; private buffers.
final class POSIXMessageQueueServer: ServerEndpoint {
    private let requestQueue: Int32
    private let replyQueues: [Int32]
    private let sendBuffer: PrivateBuffer
    private let receiveBuffer: PrivateBuffer

    init(requests: String, replies: [String], options: EndpointOptions) throws {
        var opened: [Int32] = []
        do {
            requestQueue = try POSIXMessageQueueMechanism.open(requests, O_RDONLY)
            opened.append(requestQueue)
            try POSIXMessageQueueMechanism.checkMessageSize(requestQueue, requests, options.messageBytes)
            var replyQueues: [Int32] = []
            for name in replies {
                let queue = try POSIXMessageQueueMechanism.open(name, O_WRONLY)
                opened.append(queue)
                replyQueues.append(queue)
                try POSIXMessageQueueMechanism.checkMessageSize(queue, name, options.messageBytes)
            }
            self.replyQueues = replyQueues
        } catch {
            opened.forEach { _ = ipcb_mq_close($0) }
            throw error
        }
        sendBuffer = PrivateBuffer(byteCount: options.messageBytes)
        receiveBuffer = PrivateBuffer(byteCount: options.messageBytes)
    }

    /// The route is the client number the header carries (out of range: the harness drops it).
    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Int? {
        let count: Int
        do throws(Errno) {
            count = try SystemCall.retrying { ipcb_mq_receive(requestQueue, receiveBuffer.bytes.baseAddress, receiveBuffer.bytes.count) }
        } catch {
            throw IPCError.system("mq_receive", error)
        }
        guard count == size else {
            throw IPCError.setup("mq_receive: a message of \(count) bytes arrived where \(size) were expected")
        }
        let message = UnsafeRawBufferPointer(rebasing: receiveBuffer.bytes[0..<size])
        consume(message)
        return MessageFormat.client(ofSequence: MessageFormat.sequence(of: message))
    }

    func send(to route: Int, size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let message = sendBuffer.prefix(size)
        fill(message)
        do throws(Errno) {
            _ = try SystemCall.retrying { ipcb_mq_send(replyQueues[route], message.baseAddress, size) }
        } catch {
            throw IPCError.system("mq_send", error)
        }
    }

    func close() {
        _ = ipcb_mq_close(requestQueue)
        replyQueues.forEach { _ = ipcb_mq_close($0) }
    }
}
