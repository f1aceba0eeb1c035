import Glibc
import SystemPackage

/// Socket calls shared by the socket mechanisms.
enum Socket {
    /// A new socket, closed again unless its owner releases it.
    static func make(_ domain: Int32, _ type: Int32) throws -> OwnedDescriptor {
        let fd = socket(domain, type | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IPCError.lastSystemError("socket") }
        return OwnedDescriptor(fd)
    }

    static func unixAddress(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else {
            throw IPCError.setup("socket path '\(path)' is longer than \(capacity - 1) bytes; set TMPDIR to a shorter directory")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        return address
    }

    static func loopbackAddress(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    /// A numeric IPv4 address (`10.0.0.2`, `0.0.0.0`) and port.
    static func ipv4Address(_ host: String, port: UInt16) throws -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            throw IPCError.setup("'\(host)' is not a numeric IPv4 address")
        }
        return address
    }

    static func bind<Address>(_ fd: Int32, _ address: Address, _ context: String) throws {
        var address = address
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<Address>.size))
            }
        }
        guard result == 0 else { throw IPCError.lastSystemError("bind", context) }
    }

    /// Binds a UNIX socket to `path` as a file only its owner can use (mode 0600): on Linux the
    /// socket file takes the socket inode's mode, so it is set before bind.
    static func bindPrivately(_ fd: Int32, path: String) throws {
        guard fchmod(fd, 0o600) == 0 else { throw IPCError.lastSystemError("fchmod", path) }
        try bind(fd, unixAddress(path), path)
    }

    /// A UNIX stream socket bound privately to `path` and listening; closed again if that fails.
    static func listeningUnixStream(path: String, backlog: Int32 = 1) throws -> Int32 {
        let socket = try make(AF_UNIX, Int32(SOCK_STREAM.rawValue))
        try bindPrivately(socket.rawValue, path: path)
        try listen(socket.rawValue, backlog: backlog)
        return socket.release()
    }

    static func connect<Address>(_ fd: Int32, _ address: Address, _ context: String) throws {
        var address = address
        do throws(Errno) {
            _ = try SystemCall.retrying {
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        Glibc.connect(fd, $0, socklen_t(MemoryLayout<Address>.size))
                    }
                }
            }
        } catch {
            throw IPCError.system("connect", error, context)
        }
    }

    static func listen(_ fd: Int32, backlog: Int32 = 1) throws {
        guard Glibc.listen(fd, backlog) == 0 else { throw IPCError.lastSystemError("listen") }
    }

    static func accept(_ fd: Int32) throws -> OwnedDescriptor {
        do throws(Errno) {
            return OwnedDescriptor(try SystemCall.retrying { Glibc.accept(fd, nil, nil) })
        } catch {
            throw IPCError.system("accept", error)
        }
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32, _ label: String) throws {
        var value = value
        guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw IPCError.lastSystemError("setsockopt", label)
        }
    }

    static func localPort(_ fd: Int32) throws -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { throw IPCError.lastSystemError("getsockname") }
        return UInt16(bigEndian: address.sin_port)
    }
}

/// Where the network mechanisms bind and connect. Local cells use none of these (loopback, kernel-chosen
/// ports); `ipcbench serve` sets the bind address and data port, `run --remote` the peer's address.
public enum NetworkParameters {
    /// Rendezvous: the IPv4 address the consumer binds (default 127.0.0.1).
    public static let bindAddress = "bind-address"
    /// Rendezvous: a fixed port for the consumer (default 0: the kernel picks one).
    public static let dataPort = "data-port"
    /// Published to the producer: the consumer's IPv4 address (default 127.0.0.1).
    public static let peerAddress = "address"
    /// Published by the consumer: the port it is bound to.
    public static let port = "port"

    static func bindAddress(_ rendezvous: Rendezvous) throws -> (sockaddr_in, String) {
        let host = rendezvous.parameters[bindAddress] ?? "127.0.0.1"
        let portText = rendezvous.parameters[dataPort] ?? "0"
        guard let port = UInt16(portText) else { throw IPCError.setup("data port '\(portText)' is not a port number") }
        return (try Socket.ipv4Address(host, port: port), "\(host):\(port)")
    }

    static func peerAddress(_ published: [String: String], mechanism: String) throws -> (sockaddr_in, String) {
        guard let portText = published[port], let number = UInt16(portText) else {
            throw IPCError.setup("the consumer did not publish a \(mechanism) port")
        }
        let host = published[peerAddress] ?? "127.0.0.1"
        return (try Socket.ipv4Address(host, port: number), "\(host):\(number)")
    }
}

/// A listening socket whose accept() completes the consumer's endpoint. With a `peerSecret`, a
/// connection counts only once it has sent the secret (within `secretSeconds`); any other is closed
/// and the listener goes on waiting, so a stranger who connects first cannot take the cell's place.
struct SocketListener: ConsumerListener {
    let descriptor: Int32
    let published: [String: String]
    let configure: (Int32) throws -> Void
    let options: EndpointOptions
    var peerSecret: String? = nil
    static let secretSeconds = 2

    func accept() throws -> any MessageEndpoint {
        defer { Glibc.close(descriptor) }
        while true {
            let connection = try Socket.accept(descriptor)
            if let peerSecret, !Self.proves(connection.rawValue, peerSecret) { continue }
            try configure(connection.rawValue)
            return try StreamEndpoint(socket: connection, options: options)
        }
    }

    /// True when `connection` sends `secret` first, within `secretSeconds`.
    static func proves(_ connection: Int32, _ secret: String) -> Bool {
        var timeout = timeval(tv_sec: secretSeconds, tv_usec: 0)
        guard setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0 else { return false }
        let received = UnsafeMutableRawBufferPointer.allocate(byteCount: PeerSecret.length, alignment: 1)
        defer { received.deallocate() }
        guard (try? Descriptor.readExactly(connection, into: received)) == true else { return false }
        timeout = timeval(tv_sec: 0, tv_usec: 0)
        guard setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0 else { return false }
        return Array(received) == Array(secret.utf8)
    }

    /// The producer's side: sends the secret right after connecting.
    static func prove(_ connection: Int32, _ secret: String?) throws {
        guard let secret else { return }
        try Array(secret.utf8).withUnsafeBytes { try Descriptor.writeAll(connection, $0) }
    }
}
