import CIPCShim
import Foundation
import Glibc

/// Objects a crashed earlier run left behind (its parent was killed before it could clean up):
/// found by the owner pid in their names, or for System V objects by the ledger in the run's cell
/// directory, never touching a live run's objects or anyone else's.
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
    /// mounted; `notes` says so when it is not. `unattributed` lists this user's System V objects with
    /// ipcbench's tag that no cell directory's ledger claims (a run with another TMPDIR, or an older
    /// ipcbench): reported, never removed, since nothing shows whose they are.
    public static func find() -> (found: [Leftover], notes: [String], unattributed: [String]) {
        find { !OwnedNames.isLiveRun($0) }
    }

    /// Objects this process created and still holds: between cells there should be none (soak check).
    public static func heldByThisProcess() -> [Leftover] {
        let me = getpid()
        return find(where: { $0 == me }, alsoClaimedBy: me, keys: OwnedNames.sysVKeysCreatedHere).found.filter { $0.kind != .runLock }
    }

    /// Our objects whose owner pid passes `include`. System V objects are attributed through the
    /// ledgers of this user's cell directories, plus `keys`, which `extraOwner` created.
    static func find(
        where include: (pid_t) -> Bool, alsoClaimedBy extraOwner: pid_t? = nil, keys: Set<key_t> = []
    ) -> (found: [Leftover], notes: [String], unattributed: [String]) {
        var found: [Leftover] = []
        var notes: [String] = []
        var temporaryDirectories = ["/tmp"]
        if let tmp = ProcessInfo.processInfo.environment["TMPDIR"], !tmp.isEmpty, tmp != "/tmp" { temporaryDirectories.append(tmp) }
        // Every cell directory of this user, live or not, for the System V ledgers.
        var claims: [key_t: pid_t] = [:]
        for directory in temporaryDirectories {
            let entries = ownedEntries(in: directory, kind: .workspace, { _ in true }) { directory + "/" + $0 }
            for entry in entries where !entry.name.hasSuffix(RunLock.suffix) {
                for key in OwnedNames.ledgerKeys(inWorkspace: entry.name) { claims[key] = entry.ownerPID }
            }
            found += entries.filter { include($0.ownerPID) }.map { entry in
                var entry = entry
                if entry.name.hasSuffix(RunLock.suffix) { entry.kind = .runLock }
                return entry
            }
        }
        if let extraOwner { for key in keys { claims[key] = extraOwner } }
        found += ownedEntries(in: "/dev/shm", kind: .posixSharedMemory, include) { "/" + $0 }
        if FileManager.default.fileExists(atPath: "/dev/mqueue/.") && isMountPoint("/dev/mqueue") {
            found += ownedEntries(in: "/dev/mqueue", kind: .posixMessageQueue, include) { "/" + $0 }
        } else {
            notes.append("POSIX message queues cannot be listed: /dev/mqueue is not mounted (mount -t mqueue none /dev/mqueue)")
        }
        var unattributed: [String] = []
        for (path, kind) in [("msg", Leftover.Kind.sysVMessageQueue), ("shm", .sysVSharedMemory), ("sem", .sysVSemaphoreSet)] {
            for (key, id) in taggedSysV("/proc/sysvipc/" + path) {
                if let owner = claims[key] {
                    if include(owner) { found.append(Leftover(kind: kind, name: String(id), ownerPID: owner)) }
                } else {
                    let command = kind == .sysVMessageQueue ? "-q" : kind == .sysVSharedMemory ? "-m" : "-s"
                    unattributed.append(
                        "\(kind.rawValue) \(id) (key 0x\(String(UInt32(bitPattern: key), radix: 16))) carries ipcbench's tag but no cell directory in \(temporaryDirectories.joined(separator: " or ")) lists it: if no ipcbench run of yours is live, remove it with `ipcrm \(command) \(id)`")
                }
            }
        }
        return (found, notes, unattributed)
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

    /// This user's objects with ipcbench's key tag, from /proc/sysvipc/* lines (key id perms … uid …;
    /// the uid column's position comes from the header).
    private static func taggedSysV(_ path: String) -> [(key: key_t, id: Int32)] {
        guard let text = SystemFacts.readWhole(path) else { return [] }
        var lines = text.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true) }
        guard !lines.isEmpty else { return [] }
        let header = lines.removeFirst()
        guard let uidColumn = header.firstIndex(of: "uid") else { return [] }
        return lines.compactMap { fields in
            guard fields.count > uidColumn, let key = Int32(fields[0]), let id = Int32(fields[1]),
                  let uid = UInt32(fields[uidColumn]), uid == getuid(), OwnedNames.isTagged(sysVKey: key)
            else { return nil }
            return (key, id)
        }
    }

    private static func isMountPoint(_ path: String) -> Bool {
        let mounts = SystemFacts.readWhole("/proc/self/mounts") ?? ""
        return mounts.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().first == Substring(path) }
    }
}
