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
        // Torn down in reverse, after every worker is killed and reaped (the workers' defer runs first).
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
        var workers: [WorkerProcess] = []
        defer { workers.forEach { $0.terminate() } }

        func name(_ role: Role, _ index: Int) -> String { count > 1 ? "\(role) of pair \(index)" : role.rawValue }
        var tasks: [WorkerTask] = (0..<count).map { index in
            var task = template
            task.rendezvous = channels[index].rendezvous
            task.options.peerSharesCPU = template.options.peerSharesCPU || (count > 1 && layout.sharesCPU(pair: index))
            if count > 1, index != count - 1 { task.fault = nil }
            return task
        }
        // A fresh secret per pair and repetition: a connecting peer proves with it that it is this
        // pair's producer.
        let secrets = (0..<count).map { _ in PeerSecret.make() }
        // More processes start on the same CPUs: allow each pair its share of the set-up time.
        let setup = Deadline(seconds: limits.setupTimeoutSeconds + Double(count - 1) * 0.5)

        var consumers: [WorkerProcess] = []
        for index in 0..<count {
            tasks[index].role = .consumer
            tasks[index].cpu = layout.pairs[index].consumer
            let consumer = try WorkerProcess(
                role: .consumer, name: name(.consumer, index), executable: limits.workerExecutable, task: tasks[index],
                inherited: channels[index].rendezvous.consumerDescriptors, peerSecret: secrets[index])
            workers.append(consumer)
            consumers.append(consumer)
            closeAll(channels[index].rendezvous.consumerDescriptors, from: &unclosed)
        }
        var published: [ObjectIdentifier: [String: String]] = [:]
        var binding = consumers
        while !binding.isEmpty {
            guard case let (consumer, .bound(endpoint)) = try EventWaiter.next(from: binding, deadline: setup, phase: "consumer set-up") else {
                throw IPCError.worker("a consumer did not report its bound endpoint first")
            }
            published[ObjectIdentifier(consumer)] = endpoint
            binding.removeAll { $0 === consumer }
        }

        var producers: [WorkerProcess] = []
        for index in 0..<count {
            tasks[index].role = .producer
            tasks[index].cpu = layout.pairs[index].producer
            tasks[index].published = published[ObjectIdentifier(consumers[index])] ?? [:]
            let producer = try WorkerProcess(
                role: .producer, name: name(.producer, index), executable: limits.workerExecutable, task: tasks[index],
                inherited: channels[index].rendezvous.producerDescriptors, peerSecret: secrets[index])
            workers.append(producer)
            producers.append(producer)
            closeAll(channels[index].rendezvous.producerDescriptors, from: &unclosed)
        }

        // Barrier: every endpoint open and every worker pinned before any starts its loop.
        var waiting = workers
        while !waiting.isEmpty {
            let (worker, event) = try EventWaiter.next(from: waiting, deadline: setup, phase: "connection set-up")
            guard case .ready = event else { throw IPCError.worker("\(worker.name) sent an unexpected event before ready") }
            waiting.removeAll { $0 === worker }
        }
        for consumer in consumers { try consumer.sendGo() }
        for producer in producers { try producer.sendGo() }

        let measuring = Deadline(seconds: Double(template.durationNanoseconds) / 1e9 + limits.cellTimeoutSeconds)
        var results: [ObjectIdentifier: WorkerResult] = [:]
        waiting = workers
        while !waiting.isEmpty {
            let (worker, event) = try EventWaiter.next(from: waiting, deadline: measuring, phase: "the timed loop")
            guard case let .finished(result) = event else { throw IPCError.worker("\(worker.name) sent an unexpected event instead of its result") }
            results[ObjectIdentifier(worker)] = result
            waiting.removeAll { $0 === worker }
        }
        for worker in workers {
            let ending = worker.reap(timeoutNanoseconds: 2_000_000_000)
            guard ending == .success else { throw IPCError.worker("\(worker.name) \(ending) after reporting its result") }
        }
        return (0..<count).map { index in
            Results(producer: results[ObjectIdentifier(producers[index])]!, consumer: results[ObjectIdentifier(consumers[index])]!)
        }
    }

    private static func closeAll(_ descriptors: [Int32], from unclosed: inout [Int32]) {
        for descriptor in descriptors {
            close(descriptor)
            unclosed.removeAll { $0 == descriptor }
        }
    }
}
