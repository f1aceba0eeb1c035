import CIPCShim
import Glibc

/// `--clients` on shm-posix: one ring segment per client, each exactly a pair's (the client is an
/// ordinary producer over it, opened by name), and a server that polls the clients' rings in turn.
///
/// One ring per client rather than one ring with several producers: the producers would have to
/// claim slots with an atomic read-modify-write on one shared line, a cost a single-producer ring
/// never pays and one that would blur what the row measures. Only the spin variants serve several
/// clients: a server cannot sleep on several rings' semaphores or futexes at once.
extension POSIXSharedMemoryMechanism: FanInMechanism {
    public var fanInShape: String {
        "a ring segment per client, which the server polls in turn (spin variants only: nothing to sleep on for several rings at once)"
    }

    public func fanInUnavailableReason(variant: String, messageBytes: Int) -> String? {
        guard SharedRingVariant(variant)?.notification != .spin else { return nil }
        let spinning = SharedRingVariant.all.filter { $0.notification == .spin }.map(\.name).joined(separator: ", ")
        return "shm-posix fan-in polls one ring per client, so only the spin variants (\(spinning)) serve several clients: a server cannot sleep on several rings' \(variant) notifications at once"
    }

    public func prepareFanIn(workspace: String, clients: Int, options: EndpointOptions) throws -> FanInRendezvous {
        // The server's rendezvous carries no notification objects: only the spin variants need none.
        if let reason = fanInUnavailableReason(variant: options.variant, messageBytes: options.messageBytes) { throw IPCError.setup(reason) }
        var server = Rendezvous()
        var clientRendezvous: [Rendezvous] = []
        do {
            for client in 0..<clients {
                let rendezvous = try prepare(workspace: workspace, options: options)
                server.parameters["shm-name-\(client)"] = try rendezvous.require("shm-name")
                clientRendezvous.append(rendezvous)
            }
        } catch {
            teardown(server)
            throw error
        }
        // Every client's segment has the same layout.
        for (key, value) in clientRendezvous[0].parameters where key != "shm-name" { server.parameters[key] = value }
        return FanInRendezvous(server: server, clients: clientRendezvous)
    }

    public func listenForClients(_ rendezvous: Rendezvous, clients: Int, options: EndpointOptions) throws -> any ServerListener {
        let layout = try RingLayout(rendezvous)
        var endpoints: [any MessageEndpoint] = []
        do {
            for client in 0..<clients {
                let mapping = try POSIXSharedMemorySegment.mapObject(rendezvous.require("shm-name-\(client)"), bytes: layout.segmentBytes, holding: "the ring")
                endpoints.append(try SharedRing.endpoint(
                    mapping: mapping, layout: layout, rendezvous: rendezvous, options: options, role: .consumer, mechanism: id))
            }
            return ImmediateServerListener(server: try RingFanInServer(endpoints: endpoints))
        } catch {
            endpoints.forEach { $0.close() }
            throw error
        }
    }
}

extension RingChannel where Notifier == SpinNotifier {
    /// Takes the incoming ring's next message if it is in its slot (the acquire load of its stamp
    /// makes its bytes visible); false, without waiting, when it is not there yet.
    @inline(__always)
    func receiveIfReady(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Bool {
        guard let side = incoming else { return false }
        let tail = ipcb_load_relaxed_u32(side.ring.tail)
        guard ipcb_load_acquire_u32(side.ring.stampWord(tail)) == side.ring.stamp(of: tail) else { return false }
        try take(from: side, at: tail, size: size, consume: consume)
        return true
    }
}

/// The server of a ring fan-in: a consumer's channel per client, polled round robin from the one
/// after the last served, so a client that always has a message ready cannot starve the others.
/// Between two sweeps that found nothing it waits as a spinning consumer does (SpinNotifier.pause:
/// pauses, and a yield when a client shares its CPU). The route is the client's ring.
final class RingFanInServer: ServerEndpoint {
    /// The clients' endpoints, owning the mappings and private words the channels point into.
    private let endpoints: [any MessageEndpoint]
    /// The same channels as plain values, so the poll loop reads them without reference counting.
    private let channels: UnsafeMutableBufferPointer<RingChannel<SpinNotifier>>
    private let notifier: SpinNotifier
    private var next = 0

    init(endpoints: [any MessageEndpoint]) throws {
        let channels = try endpoints.map { endpoint in
            switch endpoint {
            case let ring as SpinRingEndpoint: ring.channel
            case let ring as SpinPingPongEndpoint: ring.channel
            default: throw IPCError.setup("a ring fan-in needs a spinning ring per client, not \(type(of: endpoint))")
            }
        }
        guard let first = channels.first, let notifier = first.incoming?.notifier else {
            throw IPCError.setup("a ring fan-in needs at least one client ring to receive from")
        }
        self.endpoints = endpoints
        self.notifier = notifier
        self.channels = .allocate(capacity: channels.count)
        _ = self.channels.initialize(from: channels)
    }

    deinit { channels.deallocate() }

    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Int? {
        let count = channels.count
        var spin = SpinNotifier.Budget()
        while true {
            var client = next
            for _ in 0..<count {
                if try channels[client].receiveIfReady(size: size, consume: consume) {
                    next = client + 1 == count ? 0 : client + 1
                    return client
                }
                client = client + 1 == count ? 0 : client + 1
            }
            notifier.pause(&spin)
        }
    }

    func send(to route: Int, size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws {
        try channels[route].send(size: size, fill: fill)
    }

    func close() { endpoints.forEach { $0.close() } }
}
