import Glibc

/// Named pipes (FIFOs), one per direction, created in the cell's private directory and opened by
/// path in each worker, as unrelated processes would.
public struct FIFOMechanism: Mechanism {
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

    private static func open(_ path: String, _ flags: Int32) throws -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC)
            if fd >= 0 { return fd }
            if errno != EINTR { throw IPCError.lastSystemError("open", path) }
        }
    }
}
