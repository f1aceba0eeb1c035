import Glibc

/// An open file descriptor with exactly one owner, which closes it when it goes: on every error path
/// of a set-up, and never twice. Set-up code holds a new descriptor in one of these until nothing
/// that could fail is left, then `release()`s the number to the endpoint or listener that closes it
/// in its own `close()`.
struct OwnedDescriptor: ~Copyable {
    let rawValue: Int32

    init(_ rawValue: Int32) {
        self.rawValue = rawValue
    }

    deinit { Glibc.close(rawValue) }

    /// The descriptor, no longer closed here: the caller's new owner closes it.
    consuming func release() -> Int32 {
        let descriptor = rawValue
        discard self
        return descriptor
    }
}
