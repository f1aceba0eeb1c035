import Foundation
import Glibc

/// A private directory (mode 0700) for one cell's named objects: FIFOs, socket files, mapped files.
/// Removed with everything in it when the cell ends, whatever the outcome.
public final class Workspace {
    public static let prefix = OwnedNames.prefix
    public let path: String

    public init() throws {
        let base = ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        // The parent's pid in the name lets `ipcbench clean` tell a crashed run's directory from a live one's.
        var template = Array((base + "/" + Self.prefix + "\(getpid())-XXXXXX").utf8CString)
        guard let created = mkdtemp(&template) else { throw IPCError.lastSystemError("mkdtemp", base) }
        path = String(cString: created)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    deinit { remove() }
}
