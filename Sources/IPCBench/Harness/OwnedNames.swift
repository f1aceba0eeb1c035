import Foundation
import Glibc

/// Names and keys for everything a run creates outside its cell workspace, tagged with the creating
/// (parent) process's pid so `ipcbench clean` can tell a crashed run's leftovers from a live run's
/// objects and from everyone else's.
public enum OwnedNames {
    public static let prefix = "ipcbench-"

    /// A POSIX IPC name (shm_open, mq_open): `/ipcbench-<pid>-<16 random hex digits>-<label>`. The
    /// pid lets `clean` tell a crashed run's objects from a live run's; the random part makes the
    /// name unguessable, so no other user can create it first. Create it with O_EXCL and, on EEXIST,
    /// ask for a new name: never open or remove an object by this name that you did not create.
    public static func posixName(_ label: String) -> String {
        "/\(prefix)\(getpid())-\(RandomText.hex(digits: 16))-\(label)"
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

    // MARK: System V keys

    /// System V keys carry this tag in their top byte and 24 random bits below it: unguessable, so
    /// no other user can take a cell's key first. A key has no room for the creating pid, so the
    /// parent writes each key into its cell directory's ledger (`sysVLedgerName`) *before* creating
    /// the object: a crashed run's cell directory tells `clean` which tagged objects were its own.
    static let sysVTag: Int32 = 0x7A
    public static let sysVLedgerName = "sysv-keys"
    private static let keysCreatedHere = Mutex<Set<key_t>>([])

    public static func isTagged(sysVKey key: key_t) -> Bool { key >> 24 == sysVTag }

    /// Creates a System V object under a fresh tagged key with IPC_CREAT | IPC_EXCL (`get(key, flags)`
    /// is msgget/shmget/semget with the size arguments bound), recording the key in `workspace`'s
    /// ledger first. A key already in use belongs to someone else: it is left alone and another key
    /// is drawn. Returns the object's id, or -1 with errno set by the last `get`.
    public static func createSysV(ledger workspace: String, _ get: (key_t, Int32) -> Int32) throws -> Int32 {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<64 {
            let random: UInt32 = generator.next()
            let key = key_t(sysVTag << 24 | Int32(random & 0xFF_FFFF))
            try recordSysVKey(key, in: workspace)
            let id = get(key, IPC_CREAT | IPC_EXCL | 0o600)
            if id >= 0 || errno != EEXIST { return id }
        }
        return -1
    }

    /// The keys this process has created: `Leftovers.heldByThisProcess` checks none is left between cells.
    static var sysVKeysCreatedHere: Set<key_t> { keysCreatedHere.withLock { $0 } }

    /// The keys a cell directory's ledger lists (nothing if it has none or it cannot be read safely).
    static func ledgerKeys(inWorkspace workspace: String) -> [key_t] {
        guard let bytes = OwnFile.read(workspace + "/" + sysVLedgerName, limit: 1 << 20) else { return [] }
        let text = String(decoding: bytes, as: UTF8.self)
        return text.split(separator: "\n").compactMap { UInt32($0, radix: 16).map { key_t(bitPattern: $0) } }.filter { isTagged(sysVKey: $0) }
    }

    private static func recordSysVKey(_ key: key_t, in workspace: String) throws {
        keysCreatedHere.withLock { _ = $0.insert(key) }
        let path = workspace + "/" + sysVLedgerName
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw IPCError.lastSystemError("open", path) }
        defer { close(descriptor) }
        let line = Array((String(UInt32(bitPattern: key), radix: 16) + "\n").utf8)
        guard line.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) == line.count else {
            throw IPCError.lastSystemError("write", path)
        }
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
