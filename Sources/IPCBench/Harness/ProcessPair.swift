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

/// One repetition of one cell: a producer and a consumer process, started, synchronised, measured,
/// reaped, and everything they used removed.
public enum ProcessPair {
    public struct Results: Sendable {
        public var producer: WorkerResult
        public var consumer: WorkerResult
    }

    public static func run(_ mechanism: any Mechanism, task template: WorkerTask, producerCPU: Int?, consumerCPU: Int?, limits: PairLimits) throws -> Results {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let rendezvous = try mechanism.prepare(workspace: workspace.path, options: template.options)
        var unclosed = rendezvous.producerDescriptors + rendezvous.consumerDescriptors
        defer {
            unclosed.forEach { close($0) }
            mechanism.teardown(rendezvous)
        }
        // Workers are killed and reaped (deinit) before the workspace and teardown run.
        var workers: [WorkerProcess] = []
        defer { workers.forEach { $0.terminate() } }

        var task = template
        task.rendezvous = rendezvous

        task.role = .consumer
        task.cpu = consumerCPU
        // A fresh secret per repetition: a connecting peer proves with it that it is this cell's producer.
        let secret = PeerSecret.make()
        let consumer = try WorkerProcess(
            role: .consumer, executable: limits.workerExecutable, task: task, inherited: rendezvous.consumerDescriptors, peerSecret: secret)
        workers.append(consumer)
        closeAll(rendezvous.consumerDescriptors, from: &unclosed)

        let setup = Deadline(seconds: limits.setupTimeoutSeconds)
        guard case let (_, .bound(published)) = try EventWaiter.next(from: [consumer], deadline: setup, phase: "consumer set-up") else {
            throw IPCError.worker("consumer did not report its bound endpoint first")
        }

        task.role = .producer
        task.cpu = producerCPU
        task.published = published
        let producer = try WorkerProcess(
            role: .producer, executable: limits.workerExecutable, task: task, inherited: rendezvous.producerDescriptors, peerSecret: secret)
        workers.append(producer)
        closeAll(rendezvous.producerDescriptors, from: &unclosed)

        // Barrier: both endpoints open and both pinned before either starts its loop.
        var waiting = workers
        while !waiting.isEmpty {
            let (worker, event) = try EventWaiter.next(from: waiting, deadline: setup, phase: "connection set-up")
            guard case .ready = event else { throw IPCError.worker("\(worker.role) sent an unexpected event before ready") }
            waiting.removeAll { $0 === worker }
        }
        try consumer.sendGo()
        try producer.sendGo()

        let measuring = Deadline(seconds: Double(template.durationNanoseconds) / 1e9 + limits.cellTimeoutSeconds)
        var results: [Role: WorkerResult] = [:]
        waiting = workers
        while !waiting.isEmpty {
            let (worker, event) = try EventWaiter.next(from: waiting, deadline: measuring, phase: "the timed loop")
            guard case let .finished(result) = event else { throw IPCError.worker("\(worker.role) sent an unexpected event instead of its result") }
            results[worker.role] = result
            waiting.removeAll { $0 === worker }
        }
        for worker in workers {
            let ending = worker.reap(timeoutNanoseconds: 2_000_000_000)
            guard ending == "exited with status 0" else { throw IPCError.worker("\(worker.role) \(ending) after reporting its result") }
        }
        return Results(producer: results[.producer]!, consumer: results[.consumer]!)
    }

    private static func closeAll(_ descriptors: [Int32], from unclosed: inout [Int32]) {
        for descriptor in descriptors {
            close(descriptor)
            unclosed.removeAll { $0 == descriptor }
        }
    }
}
