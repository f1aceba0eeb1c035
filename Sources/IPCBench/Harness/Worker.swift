import CIPCShim
import Foundation
import Glibc

/// The body of the hidden `ipcbench worker` subcommand: one side of one repetition.
public enum Worker {
    /// Runs the task and returns the process exit status. All outcomes are reported to the parent over
    /// the control channel; nothing is printed on stdout.
    public static func run(taskJSON: String, parentPID: pid_t?) -> Int32 {
        // If the parent dies (even by SIGKILL), take this worker down with it. It may have died before
        // the request was made; then this worker has already been re-parented and must leave now.
        _ = ipcb_set_parent_death_signal(SIGKILL)
        if let parentPID, getppid() != parentPID { return 1 }
        do {
            var task = try JSONDecoder().decode(WorkerTask.self, from: Data(taskJSON.utf8))
            task.options.peerSecret = PeerSecret.takeFromEnvironment()
            try run(task)
            return 0
        } catch {
            // Started by hand (no parent listening on the control channel): say it on stderr instead.
            if fcntl(WorkerControl.toParent, F_GETFD) < 0 {
                try? FileHandle.standardError.write(contentsOf: Data("ipcbench worker: \(error)\n".utf8))
            }
            WorkerControl.send(.failed(reason: "\(error)"))
            return 1
        }
    }

    static func run(_ task: WorkerTask) throws {
        guard let mechanism = MechanismRegistry.mechanism(id: task.mechanismID) else {
            throw IPCError.setup("unknown mechanism '\(task.mechanismID)'")
        }
        if let cpu = task.cpu {
            try Affinity.pin(toCPU: cpu)
            try verifyPinned(to: cpu)
        }
        if task.clients > 1, task.role == .consumer {
            try serve(task, mechanism)
            return
        }
        let endpoint: any MessageEndpoint
        switch task.role {
        case .consumer:
            let listener = task.readers > 1
                ? try fanOut(mechanism, task).listenAsReader(task.rendezvous, options: task.options)
                : try mechanism.listen(task.rendezvous, options: task.options)
            WorkerControl.send(.bound(published: listener.published))
            endpoint = try listener.accept()
        case .producer where task.readers > 1:
            endpoint = try fanOut(mechanism, task).connectToReaders(task.rendezvous, readers: task.readers, options: task.options)
        case .producer:
            endpoint = try mechanism.connect(task.rendezvous, published: task.published, options: task.options)
        }
        defer { endpoint.close() }
        if let cpu = task.cpu { try verifyPinned(to: cpu) }
        // Both sides have faulted the shared memory in by now: every page must be on the bound node.
        var boundMemoryPages: Int?
        if let node = task.options.memoryNode {
            guard let shared = endpoint as? any SharedMemoryEndpoint else {
                throw IPCError.setup("\(task.mechanismID) has no shared memory to bind to NUMA node \(node)")
            }
            boundMemoryPages = try MemoryBinding.verify(shared.sharedRegion, onNode: node)
        }

        WorkerControl.send(.ready(cpu: Affinity.currentCPU()))
        guard WorkerControl.waitForGo() else { throw IPCError.worker("parent closed the control channel before go") }
        if task.role == .consumer, task.options.mode == .latency {
            if task.fault == .exitEarly { afterAMoment { _exit(0) } }
            if task.fault == .stall { afterAMoment { kill(getpid(), SIGSTOP) } }
        }

        if task.fault == .drop { endpoint.injectLoss() }
        let timedEndpoint = FaultInjectingEndpoint.wrapping(endpoint, for: task) ?? SlowedEndpoint.wrapping(endpoint, for: task) ?? endpoint
        var result = try timedEndpoint.runHarnessLoop(task)
        result.boundMemoryPages = boundMemoryPages
        if let cpu = task.cpu, result.cpuBefore != cpu || result.cpuAfter != cpu {
            throw IPCError.setup("\(task.role) pinned to CPU \(cpu) ran on CPU \(result.cpuBefore)…\(result.cpuAfter)")
        }
        WorkerControl.send(.finished(result))
    }

    private static func fanOut(_ mechanism: any Mechanism, _ task: WorkerTask) throws -> any FanOutMechanism {
        guard let fanOut = mechanism as? any FanOutMechanism else {
            throw IPCError.setup("\(task.mechanismID) has no one-to-many shape for --readers")
        }
        return fanOut
    }

    /// The consumer of a fan-in cell (`--clients`): one server for every client.
    static func serve(_ task: WorkerTask, _ mechanism: any Mechanism) throws {
        guard let fanIn = mechanism as? any FanInMechanism else {
            throw IPCError.setup("\(task.mechanismID) has no many-to-one shape for --clients")
        }
        let listener = try fanIn.listenForClients(task.rendezvous, clients: task.clients, options: task.options)
        WorkerControl.send(.bound(published: listener.published))
        let server = try listener.accept()
        defer { server.close() }
        if let cpu = task.cpu { try verifyPinned(to: cpu) }
        WorkerControl.send(.ready(cpu: Affinity.currentCPU()))
        guard WorkerControl.waitForGo() else { throw IPCError.worker("parent closed the control channel before go") }
        if task.options.mode == .latency {
            if task.fault == .exitEarly { afterAMoment { _exit(0) } }
            if task.fault == .stall { afterAMoment { kill(getpid(), SIGSTOP) } }
        }
        let result = try server.runServerLoop(task)
        if let cpu = task.cpu, result.cpuBefore != cpu || result.cpuAfter != cpu {
            throw IPCError.setup("consumer pinned to CPU \(cpu) ran on CPU \(result.cpuBefore)…\(result.cpuAfter)")
        }
        WorkerControl.send(.finished(result))
    }

    /// Test-only (`--inject-fault exit-early|stall`): does `fault` to this process shortly, from
    /// another thread, so the timed loop is cut off mid-way without knowing.
    private static func afterAMoment(_ fault: @escaping @Sendable () -> Void) {
        Thread.detachNewThread {
            usleep(200_000)
            fault()
        }
    }

    private static func verifyPinned(to cpu: Int) throws {
        let running = Affinity.currentCPU()
        guard running == cpu else {
            throw IPCError.setup("pinned to CPU \(cpu) but sched_getcpu reports CPU \(running)")
        }
    }
}
