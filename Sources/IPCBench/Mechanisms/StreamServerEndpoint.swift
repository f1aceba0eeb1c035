import CIPCShim
import Glibc
import SystemPackage

/// A server over connected stream sockets (`--clients` on unix-stream): one connection per client,
/// multiplexed with epoll the way an event-loop daemon serves its clients. One `epoll_wait` collects
/// every ready connection; each is then read one message at a time (level-triggered, so a connection
/// with more waiting comes back in the next batch). Messages are framed by their fixed size.
final class StreamServerEndpoint: ServerEndpoint {
    private let connections: [Int32]
    private let epoll: Int32
    /// The keys (routes) of the connections the last `epoll_wait` found ready.
    private let readyRoutes: UnsafeMutablePointer<UInt64>
    private var ready = 0
    private var nextReady = 0
    private var open: Int
    private let sendBuffer: PrivateBuffer
    private let receiveBuffer: PrivateBuffer

    /// Takes ownership of `connections` (closed by `close()`, or here if set-up fails).
    init(connections: [Int32], options: EndpointOptions) throws {
        self.connections = connections
        open = connections.count
        epoll = ipcb_epoll_create()
        guard epoll >= 0 else {
            let failure = IPCError.lastSystemError("epoll_create1")
            connections.forEach { Glibc.close($0) }
            throw failure
        }
        readyRoutes = .allocate(capacity: Self.batch)
        sendBuffer = PrivateBuffer(byteCount: options.messageBytes)
        receiveBuffer = PrivateBuffer(byteCount: options.messageBytes)
        for (route, fd) in connections.enumerated() {
            guard ipcb_epoll_add(epoll, fd, UInt64(route)) == 0 else {
                let failure = IPCError.lastSystemError("epoll_ctl(EPOLL_CTL_ADD)")
                close()
                throw failure
            }
        }
    }

    /// Ready connections taken per `epoll_wait` (the shim's limit).
    static let batch = 64

    deinit {
        readyRoutes.deallocate()
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Int? {
        let message = receiveBuffer.prefix(size)
        while open > 0 {
            if nextReady == ready {
                do throws(Errno) {
                    ready = Int(try SystemCall.retrying { ipcb_epoll_wait_keys(epoll, readyRoutes, Int32(Self.batch), -1) })
                } catch {
                    throw IPCError.system("epoll_wait", error)
                }
                nextReady = 0
            }
            let route = Int(readyRoutes[nextReady])
            nextReady += 1
            if try Descriptor.readExactly(connections[route], into: message) {
                consume(UnsafeRawBufferPointer(message))
                return route
            }
            // The client closed its connection: stop watching it.
            ipcb_epoll_remove(epoll, connections[route])
            open -= 1
        }
        return nil
    }

    func send(to route: Int, size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let message = sendBuffer.prefix(size)
        fill(message)
        try Descriptor.writeAll(connections[route], UnsafeRawBufferPointer(message))
    }

    func close() {
        Glibc.close(epoll)
        connections.forEach { Glibc.close($0) }
    }
}

/// A listening stream socket that accepts one connection per client, then serves them all. With a
/// `peerSecret`, a connection counts only once it has sent the secret; any other is closed and the
/// listener goes on waiting (as SocketListener does for a pair).
struct StreamServerListener: ServerListener {
    let descriptor: Int32
    let clients: Int
    let options: EndpointOptions
    var published: [String: String] = [:]
    var peerSecret: String? = nil
    var configure: (Int32) throws -> Void = { _ in }

    func accept() throws -> any ServerEndpoint {
        defer { Glibc.close(descriptor) }
        var connections: [Int32] = []
        do {
            while connections.count < clients {
                let connection = try Socket.accept(descriptor)
                if let peerSecret, !SocketListener.proves(connection.rawValue, peerSecret) { continue }
                connections.append(connection.release())
                try configure(connections[connections.count - 1])
            }
        } catch {
            connections.forEach { Glibc.close($0) }
            throw error
        }
        return try StreamServerEndpoint(connections: connections, options: options)
    }
}

/// The producer of a fan-out cell over stream sockets: each message is built once in a private
/// buffer and written to every reader's connection (the same message sent N times, N copies into
/// the kernel).
final class StreamFanOutEndpoint: MessageEndpoint {
    private let connections: [Int32]
    private let sendBuffer: PrivateBuffer

    init(connections: [Int32], options: EndpointOptions) {
        self.connections = connections
        sendBuffer = PrivateBuffer(byteCount: options.messageBytes)
    }

    
    func send(size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        let message = sendBuffer.prefix(size)
        fill(message)
        for connection in connections { try Descriptor.writeAll(connection, UnsafeRawBufferPointer(message)) }
    }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        throw IPCError.setup("a fan-out producer receives nothing: --readers measures streaming")
    }

    func close() { connections.forEach { Glibc.close($0) } }
}
