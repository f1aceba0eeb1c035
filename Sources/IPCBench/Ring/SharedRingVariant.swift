import Glibc

/// Copy path and notification strategy of a ring variant, named `<copy path>/<notification>`.
public struct SharedRingVariant: Equatable, Sendable {
    public enum CopyPath: String, Sendable {
        /// The producer fills a private buffer and copies it into the slot; the consumer copies the
        /// slot out into a private buffer: two copies, the fair analogue of a pipe.
        case copy
        /// The producer writes straight into the slot; the consumer reads it where it lies.
        case inPlace = "in-place"
    }

    public enum Notification: String, Sendable, CaseIterable {
        case semaphore, futex, eventfd, spin
        case systemVSemaphore = "sysv-sem"
        case uringMessage = "uring-msg"
    }

    public var copyPath: CopyPath
    public var notification: Notification

    public init(_ copyPath: CopyPath, _ notification: Notification) {
        self.copyPath = copyPath
        self.notification = notification
    }

    public init?(_ name: String) {
        let parts = name.split(separator: "/", maxSplits: 1).map(String.init)
        guard parts.count == 2, let copyPath = CopyPath(rawValue: parts[0]), let notification = Notification(rawValue: parts[1]) else {
            return nil
        }
        self.init(copyPath, notification)
    }

    public var name: String { "\(copyPath.rawValue)/\(notification.rawValue)" }

    /// Every variant a ring mechanism can run: in place with each notification, and the copying path
    /// with a blocking and a spinning notification.
    public static let all: [SharedRingVariant] =
        [SharedRingVariant(.copy, .semaphore), SharedRingVariant(.copy, .spin)]
        + Notification.allCases.map { SharedRingVariant(.inPlace, $0) }

    static func parse(_ name: String, mechanism: String) throws -> SharedRingVariant {
        guard let variant = SharedRingVariant(name), all.contains(variant) else {
            throw IPCError.setup("\(mechanism) has no variant '\(name)'; variants: \(all.map(\.name).joined(separator: ", "))")
        }
        return variant
    }
}
