import Glibc
import Synchronization

private let interruptSignal = Atomic<Int32>(0)
/// Bit n set: fd n (0, 1 or 2) was a terminal when the handlers were installed.
private let terminalDescriptors = Atomic<Int32>(0)

/// Ctrl-C, SIGTERM and SIGHUP handling for `ipcbench run` and `serve`: the handler only records the
/// signal; the run loop notices, ends the workers, removes what the cell created, and finishes the report.
public enum Interruption {
    /// The signals that end a run cleanly (exit status 128 + signal): Ctrl-C, SIGTERM, and SIGHUP
    /// (the terminal closed, an SSH session dropped).
    public static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    public static func install() {
        // Touch the globals here, so the handler never runs their lazy initialisation.
        interruptSignal.store(0, ordering: .relaxed)
        var terminals: Int32 = 0
        for descriptor: Int32 in 0...2 where isatty(descriptor) == 1 { terminals |= 1 << descriptor }
        terminalDescriptors.store(terminals, ordering: .relaxed)

        var unblock = sigset_t()
        sigemptyset(&unblock)
        for signal in signals {
            // `nohup ipcbench run …` starts us with SIGHUP ignored: the user asked the run to outlive
            // the terminal, so it stays ignored (and exec'd workers keep ignoring it too).
            if signal == SIGHUP, isIgnored(signal) { continue }
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { received in
                interruptSignal.store(received, ordering: .relaxed)
                if received == SIGHUP { detachFromHungUpTerminal() }
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0 // no SA_RESTART: a blocking poll returns EINTR at once
            sigaction(signal, &action, nil)
            sigaddset(&unblock, signal)
        }
        // The caller may have started us with these signals blocked (some process launchers do).
        sigprocmask(SIG_UNBLOCK, &unblock, nil)
        // A worker that dies closes its pipes; the parent must see EPIPE, not die of SIGPIPE.
        Glibc.signal(SIGPIPE, SIG_IGN)
    }

    public static var requested: Bool { interruptSignal.load(ordering: .relaxed) != 0 }

    /// The signal received, or 0.
    public static var signal: Int32 { interruptSignal.load(ordering: .relaxed) }

    /// The name of the signal received ("SIGINT", "SIGTERM", "SIGHUP"), or nil when none was.
    public static var signalName: String? {
        switch signal {
        case 0: nil
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        case let other: "signal \(other)"
        }
    }

    /// True when `signal`'s disposition is SIG_IGN.
    static func isIgnored(_ signal: Int32) -> Bool {
        var current = sigaction()
        guard sigaction(signal, nil, &current) == 0, let handler = current.__sigaction_handler.sa_handler else { return false }
        return unsafeBitCast(handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
    }
}

/// On SIGHUP the terminal is gone: every later write to it fails with EIO, and
/// `FileHandle.write` traps on a failed write, which would end the run before it has cleaned
/// up and written its metadata. So the descriptors that were the terminal now point at
/// /dev/null (files and pipes are left alone). Only async-signal-safe calls (open, dup2, close).
private func detachFromHungUpTerminal() {
    let terminals = terminalDescriptors.load(ordering: .relaxed)
    guard terminals & 0b110 != 0 else { return }
    let savedErrno = errno
    let null = open("/dev/null", O_WRONLY | O_CLOEXEC)
    if null >= 0 {
        for descriptor: Int32 in 1...2 where terminals & (1 << descriptor) != 0 { dup2(null, descriptor) }
        close(null)
    }
    errno = savedErrno
}
