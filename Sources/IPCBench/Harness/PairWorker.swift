/// One worker of a repetition as the parent drives it: a local process (`WorkerProcess`) or, with
/// `--remote`, a consumer the server runs (`RemoteConsumer`). `WorkerGroup` and `EventWaiter` see
/// only this, so the barrier, the deadlines and the judgement of how a worker ended exist once.
protocol PairWorker: AnyObject {
    /// How errors name it: "producer", "consumer of pair 3", "consumer on host:port".
    var name: String { get }
    /// Readable when `readEvents` has something to take in; -1 once its events have ended.
    var descriptorForPolling: Int32 { get }
    /// No event will come any more (the process or the connection is gone).
    var atEndOfEvents: Bool { get }
    /// The next complete event already taken in, if any.
    func bufferedEvent() throws -> WorkerEvent?
    /// Takes in what is readable on `descriptorForPolling`.
    func readEvents() throws
    /// How the worker ended, when it ends (or is ending) within `milliseconds` without a result: the
    /// cause to name when its peer then fails ("consumer was killed by SIGKILL"); nil if it did not.
    func vanished(withinMilliseconds milliseconds: Int) -> String?
    /// The barrier: releases the worker into its warm-up and timed loop.
    func sendGo() throws
    /// Waits up to `timeoutNanoseconds` for the worker to end and says how it ended.
    func reap(timeoutNanoseconds: UInt64) -> WorkerEnding
    /// Ends the worker now, if it is still running.
    func terminate()
}

/// Starts a group's worker where it is to run.
protocol WorkerLauncher {
    func launch(name: String, task: WorkerTask, inherited: [Int32], secret: String, limits: PairLimits) throws -> any PairWorker
}

/// A worker process on this machine, re-executing `limits.workerExecutable`.
struct LocalLauncher: WorkerLauncher {
    func launch(name: String, task: WorkerTask, inherited: [Int32], secret: String, limits: PairLimits) throws -> any PairWorker {
        try WorkerProcess(role: task.role, name: name, executable: limits.workerExecutable, task: task, inherited: inherited, peerSecret: secret)
    }
}
