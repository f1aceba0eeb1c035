import CIPCShim
import Foundation
import Glibc

enum SignalMask {
    /// Blocks `signal` in the calling thread and checks that every thread of this process blocks it.
    /// A process-directed signal (sigqueue to a pid, mq_notify) goes to any thread that does not
    /// block it, and with no handler its default action may end the process; the worker then takes
    /// it with sigwaitinfo or a signalfd instead. Call it before the peer can send the signal.
    static func blockInEveryThread(_ signal: Int32) throws {
        let status = ipcb_block_signal(signal)
        guard status == 0 else { throw IPCError.system(call: "pthread_sigmask", errno: status, context: "SIG_BLOCK signal \(signal)") }
        let bit = UInt64(1) << UInt64(signal - 1)
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        for thread in threads {
            guard let status = SystemFacts.read("/proc/self/task/\(thread)/status") else { continue }
            let blocked = status.split(separator: "\n").first { $0.hasPrefix("SigBlk:") }
                .flatMap { UInt64($0.dropFirst("SigBlk:".count).trimmingCharacters(in: .whitespaces), radix: 16) }
            if let blocked, blocked & bit == 0 {
                throw IPCError.setup("thread \(thread) of this worker does not block signal \(signal); it would be killed by it")
            }
        }
    }
}
