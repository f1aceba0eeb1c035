import Foundation
import Glibc

/// Names and keys for everything a run creates outside its cell workspace, tagged with the creating
/// (parent) process's pid so `ipcbench clean` can tell a crashed run's leftovers from a live run's
/// objects and from everyone else's.
public enum OwnedNames {
    public static let prefix = "ipcbench-"
    private static let counter = Atomic<Int>(0)

    /// A POSIX IPC name (shm_open, mq_open, sem_open): `/ipcbench-<pid>-<n>-<label>`.
    public static func posixName(_ label: String) -> String {
        let serial = counter.add(1, ordering: .relaxed).newValue
        return "/\(prefix)\(getpid())-\(serial)-\(label)"
    }

    /// The pid embedded in a name made by `posixName` or a workspace directory name, if it is one of ours.
    public static func ownerPID(ofName name: String) -> pid_t? {
        let base = name.hasPrefix("/") ? name.dropFirst() : Substring(name)
        guard base.hasPrefix(prefix) else { return nil }
        let rest = base.dropFirst(prefix.count)
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        // Our names continue with "-" after the pid (`ipcbench-<pid>-…`).
        guard rest.dropFirst(digits.count).first == "-", let pid = pid_t(digits), pid > 0 else { return nil }
        return pid
    }

    /// System V keys carry a tag in the top byte and the pid in the next 22 bits; the low 2 bits tell
    /// apart up to four objects of one type that a cell holds at once. Keys are used with
    /// IPC_CREAT | IPC_EXCL, so an unrelated object with the same key is never opened.
    static let sysVTag: Int32 = 0x7A

    public static func sysVKey(slot: Int) -> key_t {
        precondition((0..<4).contains(slot), "four System V objects of one type per cell at most")
        return key_t((sysVTag << 24) | ((Int32(getpid()) & 0x3F_FFFF) << 2) | Int32(slot))
    }

    /// Creates a System V object with our tagged key (`get(key, flags)` is msgget/shmget/semget with
    /// the size arguments bound). An object already holding the key carries our tag and our own pid,
    /// so it was left by an earlier, dead ipcbench that had this pid: it is removed and the key reused.
    public static func createSysV(slot: Int, _ get: (key_t, Int32) -> Int32, remove: (Int32) -> Void) -> Int32 {
        let key = sysVKey(slot: slot)
        var id = get(key, IPC_CREAT | IPC_EXCL | 0o600)
        if id < 0, errno == EEXIST {
            let stale = get(key, 0o600)
            if stale >= 0 { remove(stale) }
            id = get(key, IPC_CREAT | IPC_EXCL | 0o600)
        }
        return id
    }

    public static func ownerPID(ofSysVKey key: key_t) -> pid_t? {
        guard key >> 24 == sysVTag else { return nil }
        return pid_t((key >> 2) & 0x3F_FFFF)
    }

    /// True when `pid` is a live ipcbench run (its objects are in use and must be left alone): its
    /// run lock is held (whatever the binary is called, in any PID namespace sharing the temp
    /// directory), or it is a live process whose name says ipcbench (runs of earlier versions).
    public static func isLiveRun(_ pid: pid_t) -> Bool {
        if RunLock.isHeld(byRunOf: pid) { return true }
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        let command = (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) ?? ""
        return command.hasPrefix("ipcbench")
    }
}

import Synchronization
