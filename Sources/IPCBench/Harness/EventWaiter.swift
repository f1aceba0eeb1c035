import Glibc
import SystemPackage

/// Reads events from a set of workers with one deadline, failing fast when any of them dies,
/// reports failure, or the run is interrupted.
enum EventWaiter {
    /// `control`, when given, is a connection that must stay quiet meanwhile (`ipcbench serve`'s client):
    /// anything arriving on it, or its closing, ends the wait with an error; the data is left unread.
    static func next(from workers: [any PairWorker], deadline: Deadline, phase: String, watching control: Int32? = nil) throws -> (any PairWorker, WorkerEvent) {
        while true {
            for worker in workers {
                if let event = try worker.bufferedEvent() {
                    if case let .failed(reason) = event {
                        // A worker failing because its peer vanished reports a symptom: when the peer
                        // ended without a word, that is the cause to name first.
                        for other in workers where other !== worker {
                            if let cause = other.vanished(withinMilliseconds: 100) {
                                throw IPCError.worker("\(cause) during \(phase) (then \(worker.name) failed: \(reason))")
                            }
                        }
                        throw IPCError.worker("\(worker.name) failed during \(phase): \(reason)")
                    }
                    return (worker, event)
                }
                if worker.atEndOfEvents {
                    let ending = worker.reap(timeoutNanoseconds: 500_000_000)
                    throw IPCError.worker("\(worker.name) \(ending) during \(phase)")
                }
            }
            if Interruption.requested { throw IPCError.interrupted }
            let now = MonotonicClock.now()
            guard now < deadline.nanoseconds else {
                let waitingFor = workers.map(\.name).joined(separator: workers.count > 2 ? ", " : " and ")
                throw IPCError.timeout("timeout: no answer from \(waitingFor) during \(phase) within \(deadline.seconds) s")
            }
            var polled = workers.map { pollfd(fd: $0.descriptorForPolling, events: Int16(POLLIN), revents: 0) }
            if let control { polled.append(pollfd(fd: control, events: Int16(POLLIN), revents: 0)) }
            // Short slices keep Ctrl-C responsive even if a signal lands between checks.
            let sliceMilliseconds = Int32(min(100, (deadline.nanoseconds - now) / 1_000_000 + 1))
            let ready: Int32
            do throws(Errno) {
                ready = try SystemCall.once { poll(&polled, nfds_t(polled.count), sliceMilliseconds) }
            } catch .interrupted {
                continue  // to the checks above
            } catch {
                throw IPCError.system("poll", error)
            }
            if control != nil, ready > 0, polled[workers.count].revents != 0 {
                throw IPCError.peerClosed("the client closed the control connection or sent a new request during \(phase)")
            }
            for (index, entry) in polled.enumerated() where index < workers.count && entry.revents != 0 {
                try workers[index].readEvents()
            }
        }
    }
}
