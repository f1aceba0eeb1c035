/// One row of the report: a mechanism, mode and message size at one placement.
public struct Cell: Sendable {
    public var mechanism: any Mechanism
    public var mode: Mode
    public var variant: String
    /// How both workers wait for the next message, a reply or room in the channel.
    public var wait = WaitStrategy.block
    public var messageBytes: Int
    public var produce: Produce = .write
    public var touch: Touch
    public var placement: Placement
    /// Open-loop latency: messages per second on a fixed schedule (nil: closed-loop ping-pong).
    public var pacedRate: Double?
    /// `--memory-node`: where shared-memory mechanisms put the segment (nil: the kernel decides).
    public var memoryNode: MemoryNodeChoice?
    /// `HOST:PORT` of the `ipcbench serve` the consumer ran under; nil when both workers ran here.
    /// Such cells have no clock shared by both sides: latency is RTT/2 only.
    public var remote: String?
    /// `--pairs`, `--clients` or `--readers` above 1: where each pair, each client with the server, or
    /// each reader with the producer goes; nil
    /// for one pair at `placement`.
    public var layout: PairLayout?
    /// `--clients`: producers one consumer serves (1: a pair).
    public var clients = 1
    /// `--readers`: consumers that each receive every message of the one producer (1: a pair).
    public var readers = 1

    /// What one entry of `layout` is called in messages: a pair, a client or a reader.
    public var memberName: String { clients > 1 ? "client" : readers > 1 ? "reader" : "pair" }

    /// Producer/consumer pairs that run at once.
    public var pairs: Int { clients > 1 || readers > 1 ? 1 : layout?.pairs.count ?? 1 }

    public var options: EndpointOptions { EndpointOptions(mode: mode, messageBytes: messageBytes, variant: variant, wait: wait) }
    public var copies: Int { mechanism.copies(for: variant) }
    /// Whether its waiters spin on shared memory (the rings' spin variants).
    public var spins: Bool { mechanism.sharesMemory && variant.hasSuffix("/spin") }
}
