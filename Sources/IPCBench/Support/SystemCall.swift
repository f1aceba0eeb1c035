import Glibc
import SystemPackage

/// System calls that report failure as -1 and errno, made into typed results: swift-system's
/// `Errno` names the error, and the retry on EINTR is written once, here.
///
/// Not swift-system's own `FileDescriptor.read`/`write`: their untyped `throws` boxes the `Errno`
/// on the heap when it crosses a call that is not inlined (one allocation per EAGAIN of a polling
/// loop, measured in Benchmarks/HotPaths), where `throws(Errno)` allocates nothing. Sockets,
/// message queues and semaphores are not in swift-system at all.
public enum SystemCall {
    /// `call`, repeated while it fails with EINTR: its result when not negative, else its errno.
    /// For calls that may block and then be retried whole; a wait that must look at a flag after a
    /// signal uses `once` and handles `.interrupted` itself.
    @inline(__always)
    public static func retrying<Result: SignedInteger>(_ call: () -> Result) throws(Errno) -> Result {
        while true {
            let result = call()
            if result >= 0 { return result }
            let code = Errno(rawValue: errno)
            if code != .interrupted { throw code }
        }
    }

    /// `call` once: its result when not negative, else its errno (EINTR included).
    @inline(__always)
    public static func once<Result: SignedInteger>(_ call: () -> Result) throws(Errno) -> Result {
        let result = call()
        if result >= 0 { return result }
        throw Errno(rawValue: errno)
    }
}

extension IPCError {
    /// `call` (on `context`, if given) failed with `code`.
    public static func system(_ call: String, _ code: Errno, _ context: String = "") -> IPCError {
        .system(call: call, errno: code.rawValue, context: context)
    }
}
