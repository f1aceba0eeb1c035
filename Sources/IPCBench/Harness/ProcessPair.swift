import Glibc

/// How long a pair may take, and which executable plays the workers.
public struct PairLimits: Sendable {
    /// The binary re-executed as `worker`; /proc/self/exe when the CLI runs itself.
    public var workerExecutable: String
    /// How long a repetition may run beyond its planned duration (from "go" to both results).
    public var cellTimeoutSeconds: Double
    /// For starting, binding, connecting and pinning.
    public var setupTimeoutSeconds: Double

    public init(workerExecutable: String = "/proc/self/exe", cellTimeoutSeconds: Double = 60, setupTimeoutSeconds: Double = 10) {
        self.workerExecutable = workerExecutable
        self.cellTimeoutSeconds = cellTimeoutSeconds
        self.setupTimeoutSeconds = setupTimeoutSeconds
    }
}

/// One repetition of one cell: a producer and a consumer process per pair (several pairs with
/// `--pairs`, each on its own channel), started, synchronised behind one barrier, measured, reaped,
/// and everything they used removed.
public enum ProcessPair {
    public struct Results: Sendable {
        public var producer: WorkerResult
        public var consumer: WorkerResult

        public init(producer: WorkerResult, consumer: WorkerResult) {
            self.producer = producer
            self.consumer = consumer
        }
    }

    /// One pair on `producerCPU` and `consumerCPU`.
    public static func run(_ mechanism: any Mechanism, task template: WorkerTask, producerCPU: Int?, consumerCPU: Int?, limits: PairLimits) throws -> Results {
        let layout = PairLayout(pairs: [PairCPUs(producer: producerCPU, consumer: consumerCPU)], sharing: producerCPU == nil ? .unpinned : .none)
        return try run(mechanism, task: template, layout: layout, limits: limits)[0]
    }

    /// Every pair of `layout` at once; the results in the layout's order. A fault the template
    /// injects goes to the last pair only, so the others show the row fails for one bad pair.
    public static func run(_ mechanism: any Mechanism, task template: WorkerTask, layout: PairLayout, limits: PairLimits) throws -> [Results] {
        let count = layout.pairs.count
        // Torn down in reverse, after every worker is killed and reaped (the group's own defer runs first).
        var channels: [(workspace: Workspace, rendezvous: Rendezvous)] = []
        var unclosed: [Int32] = []
        defer {
            unclosed.forEach { close($0) }
            for channel in channels.reversed() {
                mechanism.teardown(channel.rendezvous)
                channel.workspace.remove()
            }
        }
        for _ in 0..<count {
            let workspace = try Workspace()
            do {
                let rendezvous = try mechanism.prepare(workspace: workspace.path, options: template.options)
                channels.append((workspace, rendezvous))
                unclosed += rendezvous.producerDescriptors + rendezvous.consumerDescriptors
            } catch {
                workspace.remove()
                throw error
            }
        }
        func name(_ role: Role, _ index: Int) -> String { count > 1 ? "\(role) of pair \(index)" : role.rawValue }
        var group = WorkerGroup()
        for index in 0..<count {
            var task = template
            task.rendezvous = channels[index].rendezvous
            task.options.peerSharesCPU = template.options.peerSharesCPU || (count > 1 && layout.sharesCPU(pair: index))
            if count > 1, index != count - 1 { task.fault = nil }
            // A fresh secret per pair and repetition: a connecting peer proves with it that it is this
            // pair's producer.
            let secret = PeerSecret.make()
            task.role = .consumer
            task.cpu = layout.pairs[index].consumer
            group.consumers.append(.init(name: name(.consumer, index), task: task, inherited: channels[index].rendezvous.consumerDescriptors, secret: secret))
            task.role = .producer
            task.cpu = layout.pairs[index].producer
            group.producers.append(.init(
                name: name(.producer, index), task: task, inherited: channels[index].rendezvous.producerDescriptors, secret: secret, consumer: index))
        }
        let (consumers, producers) = try group.run(limits: limits, durationNanoseconds: template.durationNanoseconds, unclosed: &unclosed)
        return (0..<count).map { Results(producer: producers[$0], consumer: consumers[$0]) }
    }

    /// `--clients`: one consumer serving every client of `layout` (a pair per client, all with the
    /// server's CPU as consumer). The server's result is shared out as one `Results` per client, so
    /// rows aggregate as for pairs: the client's own timed messages and end-marker count, and the
    /// server's totals (integrity errors, one-way delays, CPU) on client 0 alone.
    public static func runFanIn(_ mechanism: any FanInMechanism, task template: WorkerTask, layout: PairLayout, limits: PairLimits) throws -> [Results] {
        let count = layout.pairs.count
        let workspace = try Workspace()
        defer { workspace.remove() }
        let rendezvous = try mechanism.prepareFanIn(workspace: workspace.path, clients: count, options: template.options)
        defer { mechanism.teardown(rendezvous.server) }
        let secret = PeerSecret.make()
        var group = WorkerGroup()
        var server = template
        server.role = .consumer
        server.cpu = layout.pairs.first?.consumer
        server.clients = count
        server.rendezvous = rendezvous.server
        // A polling server (the shm-posix rings) gives its CPU up after every empty sweep only to a
        // client that shares it; on a CPU of its own a yield would be a wasted system call.
        server.options.peerSharesCPU = layout.serverSharesCPU
        if template.fault != .exitEarly, template.fault != .stall { server.fault = nil }
        group.consumers.append(.init(name: "server", task: server, inherited: [], secret: secret))
        for index in 0..<count {
            var client = template
            client.role = .producer
            client.cpu = layout.pairs[index].producer
            client.clients = count
            client.clientIndex = index
            client.rendezvous = rendezvous.clients[index]
            client.options.peerSharesCPU = layout.clientSharesCPU(index)
            if index != count - 1 || template.fault == .exitEarly || template.fault == .stall { client.fault = nil }
            group.producers.append(.init(name: "client \(index)", task: client, inherited: [], secret: secret, consumer: 0))
        }
        var unclosed: [Int32] = []
        let (servers, clients) = try group.run(limits: limits, durationNanoseconds: template.durationNanoseconds, unclosed: &unclosed)
        return split(server: servers[0], clients: clients)
    }

    /// `--readers`: one producer whose every message reaches each reader of `layout` (a pair per
    /// reader, all with the producer's CPU). Shared out as one `Results` per reader: the reader's own
    /// result, and the producer's (its CPU cost on reader 0 alone).
    public static func runFanOut(_ mechanism: any FanOutMechanism, task template: WorkerTask, layout: PairLayout, limits: PairLimits) throws -> [Results] {
        let count = layout.pairs.count
        let workspace = try Workspace()
        defer { workspace.remove() }
        let rendezvous = try mechanism.prepareFanOut(workspace: workspace.path, readers: count, options: template.options)
        defer { mechanism.teardown(rendezvous.producer) }
        let secret = PeerSecret.make()
        var group = WorkerGroup()
        for index in 0..<count {
            var reader = template
            reader.cpu = layout.pairs[index].consumer
            reader.readers = count
            reader.rendezvous = rendezvous.readers[index]
            reader.options.peerSharesCPU = layout.sharesCPU(pair: index)
            if index != count - 1 { reader.fault = nil }
            group.consumers.append(.init(name: "reader \(index)", task: reader, inherited: [], secret: secret))
        }
        var producer = template
        producer.cpu = layout.pairs.first?.producer
        producer.readers = count
        producer.rendezvous = rendezvous.producer
        producer.options.peerSharesCPU = (0..<count).contains { layout.sharesCPU(pair: $0) }
        if template.fault == .exitEarly || template.fault == .stall { producer.fault = nil }
        group.producers.append(.init(name: "producer", task: producer, inherited: [], secret: secret))
        var unclosed: [Int32] = []
        let (readers, producers) = try group.run(limits: limits, durationNanoseconds: template.durationNanoseconds, unclosed: &unclosed)
        return readers.indices.map { index in
            var share = producers[0]
            if index > 0 { share.cpuUsage = CPUUsage() }
            return Results(producer: share, consumer: readers[index])
        }
    }

    /// The server's result as one consumer result per client (see `runFanIn`).
    static func split(server: WorkerResult, clients: [WorkerResult]) -> [Results] {
        clients.indices.map { index in
            var share = server
            share.messages = server.messagesPerClient?[safe: index] ?? 0
            share.messagesSentByProducer = server.sentByClient?[safe: index] ?? 0
            share.payloadBytes = server.payloadBytes / max(1, server.messages) * share.messages
            if index > 0 {
                share.lost = 0
                share.reordered = 0
                share.corrupt = 0
                share.oneWay = nil
                share.cpuUsage = CPUUsage()
            }
            return Results(producer: clients[index], consumer: share)
        }
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
