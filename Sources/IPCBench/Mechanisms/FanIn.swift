/// The consumer's side of `--clients`: one endpoint serving several producers (clients) at once.
///
/// Each producer is an ordinary `MessageEndpoint` from `Mechanism.connect`; only the consumer's side
/// differs. A route says where a message came from and where its answer goes (a connection, a
/// client's reply queue); the harness learns the client from the message's header (MessageFormat).
public protocol ServerEndpoint: AnyObject {
    /// Waits for a message from any client, shows it to `consume` where it lies, and returns its
    /// route; nil when every client closed its side cleanly.
    func receive(size: Int, consume: (UnsafeRawBufferPointer) -> Void) throws -> Int?
    /// Sends one message to the client at `route`.
    func send(to route: Int, size: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) throws
    func close()
    /// Messages lost and then recovered by the mechanism itself (UDP's retransmissions), added to the
    /// lost count as for MessageEndpoint.
    var recoveredLosses: UInt64 { get }
    /// Runs the harness's server loop (Loops.serve) over this endpoint. Not for mechanisms to
    /// implement: as with MessageEndpoint.runHarnessLoop, it specialises the loop per endpoint type.
    func runServerLoop(_ task: WorkerTask) throws -> WorkerResult
}

extension ServerEndpoint {
    public var recoveredLosses: UInt64 { 0 }

    public func runServerLoop(_ task: WorkerTask) throws -> WorkerResult {
        try Loops.serve(self, task, clock: task.clock)
    }
}

/// The server's half-open side: listening or open, so the clients can be started, and completed by
/// `accept()` once every client has connected.
public protocol ServerListener {
    var published: [String: String] { get }
    func accept() throws -> any ServerEndpoint
}

/// A server that is complete as soon as it exists (queues opened by name).
public struct ImmediateServerListener: ServerListener {
    public let published: [String: String] = [:]
    let server: any ServerEndpoint

    public func accept() throws -> any ServerEndpoint { server }
}

/// What the parent creates for a fan-in cell: the server's rendezvous (everything, for teardown too)
/// and one per client, each handed to that client's `Mechanism.connect`.
public struct FanInRendezvous: Sendable {
    public var server: Rendezvous
    public var clients: [Rendezvous]

    public init(server: Rendezvous, clients: [Rendezvous]) {
        self.server = server
        self.clients = clients
    }
}

/// A mechanism with a many-to-one shape: one consumer serves `--clients N` producers.
public protocol FanInMechanism: Mechanism {
    /// How the server tells its clients apart, for the README and `ipcbench list`.
    var fanInShape: String { get }
    /// Parent side: creates what the server and each client open. Descriptors are not supported.
    func prepareFanIn(workspace: String, clients: Int, options: EndpointOptions) throws -> FanInRendezvous
    /// Consumer worker: opens its side for `clients` producers without waiting for them.
    func listenForClients(_ rendezvous: Rendezvous, clients: Int, options: EndpointOptions) throws -> any ServerListener
    /// Why this variant or messages of this size cannot be served many-to-one (nil: they can).
    func fanInUnavailableReason(variant: String, messageBytes: Int) -> String?
}

extension FanInMechanism {
    public func fanInUnavailableReason(variant: String, messageBytes: Int) -> String? { nil }
}

/// What the parent creates for a fan-out cell: the producer's rendezvous (everything, for teardown
/// too) and one per reader, each handed to that reader's `Mechanism.listen`.
public struct FanOutRendezvous: Sendable {
    public var producer: Rendezvous
    public var readers: [Rendezvous]

    public init(producer: Rendezvous, readers: [Rendezvous]) {
        self.producer = producer
        self.readers = readers
    }
}

/// A mechanism with a one-to-many shape: one producer, `--readers N` consumers that each receive
/// every message. Readers are ordinary consumers (their usual loop and sequence check); only the
/// producer's endpoint differs, sending each message to all of them.
public protocol FanOutMechanism: Mechanism {
    /// How the producer reaches every reader, for the README and `ipcbench list`.
    var fanOutShape: String { get }
    /// The variants that have a fan-out shape (others give unavailable rows).
    func fanOutVariants(for mode: Mode) -> [String]
    /// Parent side: creates what the producer and each reader open. Descriptors are not supported.
    func prepareFanOut(workspace: String, readers: Int, options: EndpointOptions) throws -> FanOutRendezvous
    /// Producer worker: opens its side towards every reader (each already listening).
    func connectToReaders(_ rendezvous: Rendezvous, readers: Int, options: EndpointOptions) throws -> any MessageEndpoint
    /// Reader worker: opens its side (by default as the mechanism's ordinary consumer).
    func listenAsReader(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener
}

extension FanOutMechanism {
    public func listenAsReader(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        try listen(rendezvous, options: options)
    }
}
