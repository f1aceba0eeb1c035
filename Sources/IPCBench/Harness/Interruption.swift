import Glibc
import Synchronization

private let interruptSignal = Atomic<Int32>(0)

/// Ctrl-C and SIGTERM handling for `ipcbench run`: the handler only records the signal; the run loop
/// notices, ends the workers, removes what the cell created, and finishes the report.
public enum Interruption {
    public static func install() {
        for signal in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { interruptSignal.store($0, ordering: .relaxed) }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0 // no SA_RESTART: a blocking poll returns EINTR at once
            sigaction(signal, &action, nil)
        }
        // The caller may have started us with these signals blocked (some process launchers do).
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigaddset(&unblock, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &unblock, nil)
        // A worker that dies closes its pipes; the parent must see EPIPE, not die of SIGPIPE.
        Glibc.signal(SIGPIPE, SIG_IGN)
    }

    public static var requested: Bool { interruptSignal.load(ordering: .relaxed) != 0 }

    /// The signal received, or 0.
    public static var signal: Int32 { interruptSignal.load(ordering: .relaxed) }
}
