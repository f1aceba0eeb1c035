import Glibc

/// Failures the harness reports in a row's status or on the command line.
public enum IPCError: Error, CustomStringConvertible, Equatable {
    /// A system call failed: which one, on what, and errno's text.
    case system(call: String, errno: Int32, context: String)
    /// The mechanism or harness could not set a cell up.
    case setup(String)
    /// The peer closed its side in the middle of a message or before the end marker.
    case peerClosed(String)
    /// A worker broke the control protocol or reported failure.
    case worker(String)
    case timeout(String)
    case interrupted

    public var description: String {
        switch self {
        case let .system(call, code, context):
            let text = String(cString: strerror(code))
            return context.isEmpty ? "\(call): \(text)" : "\(call) \(context): \(text)"
        case let .setup(text), let .peerClosed(text), let .worker(text), let .timeout(text):
            return text
        case .interrupted:
            return "interrupted"
        }
    }

    /// The failure of the system call just made, with errno captured now.
    public static func lastSystemError(_ call: String, _ context: String = "") -> IPCError {
        .system(call: call, errno: errno, context: context)
    }
}
