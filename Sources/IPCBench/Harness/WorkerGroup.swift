import Glibc

/// The workers of one repetition: consumers started first (each reports where it is bound),
/// then producers told where their consumer is, all released together behind one barrier, their
/// results collected and every one reaped. Killed and reaped on any error.
struct WorkerGroup {
    struct Member {
        var name: String
        var task: WorkerTask
        var inherited: [Int32]
        var secret: String
        /// Producers: the index of the consumer whose published endpoint they connect to.
        var consumer = 0
        /// Where it runs: a local process unless a remote session launches it.
        var launcher: any WorkerLauncher = LocalLauncher()
    }

    var consumers: [Member] = []
    var producers: [Member] = []

    /// The consumers' and the producers' results, each in order. `unclosed` holds the parent's copies
    /// of inherited descriptors; each member's are closed once it has started.
    func run(limits: PairLimits, durationNanoseconds: UInt64, unclosed: inout [Int32]) throws -> (consumers: [WorkerResult], producers: [WorkerResult]) {
        var workers: [any PairWorker] = []
        defer { workers.forEach { $0.terminate() } }
        func start(_ member: Member, _ role: Role, published: [String: String] = [:]) throws -> any PairWorker {
            var task = member.task
            task.role = role
            task.published = published
            let worker = try member.launcher.launch(name: member.name, task: task, inherited: member.inherited, secret: member.secret, limits: limits)
            workers.append(worker)
            for descriptor in member.inherited {
                close(descriptor)
                unclosed.removeAll { $0 == descriptor }
            }
            return worker
        }
        // More processes start on the same CPUs: allow each its share of the set-up time.
        let setup = Deadline(seconds: limits.setupTimeoutSeconds + Double(consumers.count + producers.count - 2) * 0.25)

        let consumerWorkers = try consumers.map { try start($0, .consumer) }
        var published: [ObjectIdentifier: [String: String]] = [:]
        var binding = consumerWorkers
        while !binding.isEmpty {
            guard case let (consumer, .bound(endpoint)) = try EventWaiter.next(from: binding, deadline: setup, phase: "consumer set-up") else {
                throw IPCError.worker("a consumer did not report its bound endpoint first")
            }
            published[ObjectIdentifier(consumer)] = endpoint
            binding.removeAll { $0 === consumer }
        }
        let producerWorkers = try producers.map {
            try start($0, .producer, published: published[ObjectIdentifier(consumerWorkers[$0.consumer])] ?? [:])
        }

        // Barrier: every endpoint open and every worker pinned before any starts its loop.
        var waiting = workers
        while !waiting.isEmpty {
            let (worker, event) = try EventWaiter.next(from: waiting, deadline: setup, phase: "connection set-up")
            guard case .ready = event else { throw IPCError.worker("\(worker.name) sent an unexpected event before ready") }
            waiting.removeAll { $0 === worker }
        }
        for consumer in consumerWorkers { try consumer.sendGo() }
        for producer in producerWorkers { try producer.sendGo() }

        let measuring = Deadline(seconds: Double(durationNanoseconds) / 1e9 + limits.cellTimeoutSeconds)
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
        return (consumerWorkers.map { results[ObjectIdentifier($0)]! }, producerWorkers.map { results[ObjectIdentifier($0)]! })
    }
}
