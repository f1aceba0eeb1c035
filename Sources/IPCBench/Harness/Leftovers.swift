import CIPCShim
import Foundation
import Glibc

/// Objects a crashed earlier run left behind (its parent was killed before it could clean up):
/// found by the owner pid in their names or System V keys, never touching a live run's objects or
/// anyone else's.
public struct Leftover: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case workspace = "temp directory"
        case runLock = "run lock file"
        case posixSharedMemory = "POSIX shared memory"
        case posixMessageQueue = "POSIX message queue"
        case sysVMessageQueue = "System V message queue"
        case sysVSharedMemory = "System V shared memory"
        case sysVSemaphoreSet = "System V semaphore set"
    }

    public var kind: Kind
    /// Path, POSIX name, or System V id.
    public var name: String
    public var ownerPID: pid_t

    public var description: String { "\(kind.rawValue) \(name) (from run \(ownerPID))" }
}

public enum Leftovers {
    /// Every leftover this user can see. POSIX message queues can only be listed where /dev/mqueue is
    /// mounted; `notes` says so when it is not.
    public static func find() -> (found: [Leftover], notes: [String]) {
        find { !OwnedNames.isLiveRun($0) }
    }

    /// Objects this process created and still holds: between cells there should be none (soak check).
    public static func heldByThisProcess() -> [Leftover] {
        let me = getpid()
        return find { $0 == me }.found.filter { $0.kind != .runLock }
    }

    /// Our tagged objects whose owner pid passes `include`.
    static func find(where include: (pid_t) -> Bool) -> (found: [Leftover], notes: [String]) {
        var found: [Leftover] = []
        var notes: [String] = []
        var temporaryDirectories = ["/tmp"]
        if let tmp = ProcessInfo.processInfo.environment["TMPDIR"], !tmp.isEmpty, tmp != "/tmp" { temporaryDirectories.append(tmp) }
        for directory in temporaryDirectories {
            found += ownedEntries(in: directory, kind: .workspace, include) { directory + "/" + $0 }.map { entry in
                var entry = entry
                if entry.name.hasSuffix(RunLock.suffix) { entry.kind = .runLock }
                return entry
            }
        }
        found += ownedEntries(in: "/dev/shm", kind: .posixSharedMemory, include) { "/" + $0 }
        if FileManager.default.fileExists(atPath: "/dev/mqueue/.") && isMountPoint("/dev/mqueue") {
            found += ownedEntries(in: "/dev/mqueue", kind: .posixMessageQueue, include) { "/" + $0 }
        } else {
            notes.append("POSIX message queues cannot be listed: /dev/mqueue is not mounted (mount -t mqueue none /dev/mqueue)")
        }
        found += sysV("/proc/sysvipc/msg", kind: .sysVMessageQueue, include)
        found += sysV("/proc/sysvipc/shm", kind: .sysVSharedMemory, include)
        found += sysV("/proc/sysvipc/sem", kind: .sysVSemaphoreSet, include)
        return (found, notes)
    }

    /// Removes one leftover; returns an error text if the system refused.
    public static func remove(_ leftover: Leftover) -> String? {
        let result: Int32
        switch leftover.kind {
        case .workspace, .runLock:
            do { try FileManager.default.removeItem(atPath: leftover.name); return nil } catch { return "\(error.localizedDescription)" }
        case .posixSharedMemory:
            // shm_open names and sem_open names ("sem.<name>") both live in /dev/shm.
            result = unlink("/dev/shm" + leftover.name)
        case .posixMessageQueue:
            result = unlink("/dev/mqueue" + leftover.name)
        case .sysVMessageQueue:
            result = msgctl(Int32(leftover.name)!, IPC_RMID, nil)
        case .sysVSharedMemory:
            result = shmctl(Int32(leftover.name)!, IPC_RMID, nil)
        case .sysVSemaphoreSet:
            result = ipcb_remove_semaphore_set(Int32(leftover.name)!)
        }
        return result == 0 ? nil : String(cString: strerror(errno))
    }

    private static func ownedEntries(in directory: String, kind: Leftover.Kind, _ include: (pid_t) -> Bool, name: (String) -> String) -> [Leftover] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return entries.compactMap { entry in
            let base = entry.hasPrefix("sem.") ? String(entry.dropFirst(4)) : entry
            guard let owner = OwnedNames.ownerPID(ofName: base), include(owner) else { return nil }
            var info = stat()
            guard lstat(directory + "/" + entry, &info) == 0, info.st_uid == getuid() else { return nil }
            return Leftover(kind: kind, name: name(entry), ownerPID: owner)
        }
    }

    /// /proc/sysvipc/* lines: key id perms … uid …; the uid column's position comes from the header.
    private static func sysV(_ path: String, kind: Leftover.Kind, _ include: (pid_t) -> Bool) -> [Leftover] {
        guard let text = SystemFacts.readWhole(path) else { return [] }
        var lines = text.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        guard !lines.isEmpty else { return [] }
        let header = lines.removeFirst()
        guard let uidColumn = header.firstIndex(of: "uid") else { return [] }
        return lines.compactMap { fields in
            guard fields.count > uidColumn, let key = Int32(fields[0]), let id = Int32(fields[1]),
                  let uid = UInt32(fields[uidColumn]), uid == getuid(),
                  let owner = OwnedNames.ownerPID(ofSysVKey: key), include(owner)
            else { return nil }
            return Leftover(kind: kind, name: String(id), ownerPID: owner)
        }
    }

    private static func isMountPoint(_ path: String) -> Bool {
        let mounts = SystemFacts.readWhole("/proc/self/mounts") ?? ""
        return mounts.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().first == Substring(path) }
    }
}
