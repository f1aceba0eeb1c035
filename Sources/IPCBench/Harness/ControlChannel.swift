import Foundation
import Glibc
import SystemPackage

/// Messages a worker sends its parent, one JSON object per line on the control pipe.
public enum WorkerEvent: Codable, Sendable {
    /// Consumer: its side is bound; the producer may be started with these parameters.
    case bound(published: [String: String])
    /// Endpoint open and pinning verified; waiting for the parent's "go".
    case ready(cpu: Int)
    case finished(WorkerResult)
    case failed(reason: String)
}

/// The worker's end of the control channel: fd 3 to the parent, fd 4 from it.
enum WorkerControl {
    static let toParent: Int32 = 3
    static let fromParent: Int32 = 4

    static func send(_ event: WorkerEvent) {
        guard var line = try? JSONEncoder().encode(event) else { return }
        line.append(UInt8(ascii: "\n"))
        line.withUnsafeBytes { try? Descriptor.writeAll(toParent, $0) }
    }

    /// Blocks until the parent says go (one byte). Returns false if the parent went away.
    static func waitForGo() -> Bool {
        var byte: UInt8 = 0
        return (try? SystemCall.retrying { read(fromParent, &byte, 1) }) == 1
    }
}
