import CIPCShim
import Glibc
import SystemPackage

/// An endpoint whose set-up ends with a step that needs the peer: the consumer's runs in `accept`,
/// once the producer exists, the producer's in `connect`.
protocol PeerSetUp {
    func completeWithPeer() throws
}

extension SharedRing {
    /// The consumer's listener for a ring endpoint (complete at once, unless it needs the peer).
    static func listener(_ endpoint: any MessageEndpoint) -> ImmediateListener {
        ImmediateListener {
            try (endpoint as? PeerSetUp)?.completeWithPeer()
            return endpoint
        }
    }

    /// The producer's ring endpoint, with any set-up step that needs the consumer done.
    static func connected(_ endpoint: any MessageEndpoint) throws -> any MessageEndpoint {
        do {
            try (endpoint as? PeerSetUp)?.completeWithPeer()
        } catch {
            endpoint.close()
            throw error
        }
        return endpoint
    }

    /// `uring-msg` set-up: gets the peer's io_uring descriptor over the cell's socket pair and
    /// returns it, checked to be an io_uring; closes the socket. The kernel refuses to pass an
    /// io_uring with SCM_RIGHTS, so each side sends its pid and ring descriptor number, allows the
    /// peer (and only it) ptrace access under Yama, says so, and copies the peer's ring with
    /// pidfd_getfd. Both sides send before they wait, so neither waits on the other; a peer that
    /// stops answering ends in a timeout.
    static func exchangeRingDescriptors(_ own: Int32, over socket: Int32) throws -> Int32 {
        defer { Glibc.close(socket) }
        var introduction: (Int32, Int32) = (getpid(), own)
        try sendRecord(&introduction, on: socket)
        var peer: (pid: Int32, ring: Int32) = (0, -1)
        try receiveRecord(&peer, on: socket)
        let allowing = ipcb_allow_tracer(peer.pid)
        // EINVAL: no Yama, nothing to allow. The peer learns of any other failure and says it.
        var allowed: Int32 = allowing == -EINVAL ? 0 : allowing
        try sendRecord(&allowed, on: socket)
        var peerAllowed: Int32 = 0
        try receiveRecord(&peerAllowed, on: socket)
        guard peerAllowed == 0 else {
            throw IPCError.system(call: "prctl(PR_SET_PTRACER)", errno: -peerAllowed, context: "the peer could not let this worker copy its io_uring")
        }
        let copy = ipcb_descriptor_of_process(peer.pid, peer.ring)
        // Withdraw the permission once both copies are made: the peer's copy of this ring is done
        // when its "copied" arrives.
        var copied: Int32 = copy >= 0 ? 0 : copy
        try sendRecord(&copied, on: socket)
        var peerCopied: Int32 = 0
        try receiveRecord(&peerCopied, on: socket)
        _ = ipcb_allow_tracer(0)
        guard copy >= 0 else {
            throw IPCError.system(call: "pidfd_getfd", errno: -copy, context: "the peer's io_uring (pid \(peer.pid), descriptor \(peer.ring))")
        }
        guard peerCopied == 0 else {
            Glibc.close(copy)
            throw IPCError.system(call: "pidfd_getfd", errno: -peerCopied, context: "the peer could not copy this worker's io_uring")
        }
        var link = [UInt8](repeating: 0, count: 64)
        let length = readlink("/proc/self/fd/\(copy)", &link, link.count)
        let target = length > 0 ? String(decoding: link[0..<length], as: UTF8.self) : "?"
        guard target == "anon_inode:[io_uring]" else {
            Glibc.close(copy)
            throw IPCError.setup("the peer's descriptor \(peer.ring) is not an io_uring (\(target))")
        }
        return copy
    }

    private static func sendRecord<Record>(_ record: inout Record, on socket: Int32) throws {
        let size = MemoryLayout<Record>.size
        do throws(Errno) {
            // A record this small on a SOCK_SEQPACKET socket is sent whole or not at all.
            _ = try SystemCall.retrying { withUnsafeBytes(of: &record) { Glibc.send(socket, $0.baseAddress, size, 0) } }
        } catch {
            throw IPCError.system("send", error, "io_uring descriptor exchange")
        }
    }

    private static func receiveRecord<Record>(_ record: inout Record, on socket: Int32) throws {
        var ready = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        let readable: Int32
        do throws(Errno) {
            readable = try SystemCall.retrying { Glibc.poll(&ready, 1, Int32(exchangeTimeoutSeconds * 1000)) }
        } catch {
            throw IPCError.system("poll", error, "io_uring descriptor exchange")
        }
        guard readable > 0 else {
            throw IPCError.timeout("the peer did not answer the io_uring descriptor exchange within \(exchangeTimeoutSeconds) s")
        }
        let size = MemoryLayout<Record>.size
        let count = withUnsafeMutableBytes(of: &record) { Glibc.recv(socket, $0.baseAddress, size, 0) }
        guard count == size else {
            throw count < 0 ? IPCError.lastSystemError("recv", "io_uring descriptor exchange")
                : IPCError.setup("the peer sent \(count) bytes where the io_uring descriptor exchange expects \(size)")
        }
    }

    static let exchangeTimeoutSeconds = 30

    /// Why the workers cannot copy each other's ring with pidfd_getfd here (Yama's policy), or nil.
    static let messageRingExchangeUnavailableReason =
        PtraceAccess.yamaUnavailableReason(for: "pidfd_getfd (which uring-msg needs to reach the peer's ring)")
}
