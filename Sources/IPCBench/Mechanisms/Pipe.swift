import CIPCShim
import Glibc

/// Anonymous pipes, one per direction, created by the parent and inherited by both workers.
public struct PipeMechanism: Mechanism {
    public init() {}
    public let id = "pipe"
    public let summary = "anonymous pipe(2) pair, inherited by both workers"

    public func variants(for mode: Mode) -> [String] { ["write/read"] }
    public func copies(for variant: String) -> Int { 2 }
    public func waitStrategies(for variant: String) -> [WaitStrategy] { WaitStrategy.allCases }

    public func prepare(workspace: String, options: EndpointOptions) throws -> Rendezvous {
        try Rendezvous.inheritedPipePair()
    }

    public func listen(_ rendezvous: Rendezvous, options: EndpointOptions) throws -> any ConsumerListener {
        ImmediateListener { try Self.endpoint(options) }
    }

    public func connect(_ rendezvous: Rendezvous, published: [String: String], options: EndpointOptions) throws -> any MessageEndpoint {
        try Self.endpoint(options)
    }

    private static func endpoint(_ options: EndpointOptions) throws -> StreamEndpoint {
        try StreamEndpoint(readDescriptor: Rendezvous.inheritedDescriptor(1), writeDescriptor: Rendezvous.inheritedDescriptor(0), options: options)
    }
}

extension Rendezvous {
    /// Two pipes, one per direction, for workers to inherit: in each worker, inherited descriptor 0 is
    /// the end it writes and 1 the end it reads (`pipe`, `vmsplice` and `cma` share this layout).
    static func inheritedPipePair() throws -> Rendezvous {
        var toConsumer: [Int32] = [-1, -1]
        var toProducer: [Int32] = [-1, -1]
        guard ipcb_pipe_cloexec(&toConsumer) == 0 else { throw IPCError.lastSystemError("pipe2") }
        guard ipcb_pipe_cloexec(&toProducer) == 0 else {
            let failure = IPCError.lastSystemError("pipe2")
            Glibc.close(toConsumer[0]); Glibc.close(toConsumer[1])
            throw failure
        }
        var rendezvous = Rendezvous()
        // Index 0 is what the worker writes, index 1 what it reads.
        rendezvous.producerDescriptors = [toConsumer[1], toProducer[0]]
        rendezvous.consumerDescriptors = [toProducer[1], toConsumer[0]]
        return rendezvous
    }
}
