import Foundation
import Glibc
import Synchronization

private let heldLock = Mutex<(descriptor: Int32, path: String)?>(nil)

/// Held for as long as a run (or `serve`) may own IPC objects: a file
/// `<TMPDIR>/ipcbench-<pid>-<random>.runlock`, created exclusively and locked with flock. `clean`
/// takes a pid's objects for a live run's while one of this user's lock files for that pid is
/// locked, so a renamed binary, or a run in another PID namespace sharing the temp directory, is
/// never cleaned up under. A crashed run's lock file is unlocked and is itself a leftover.
public enum RunLock {
    public static let suffix = ".runlock"

    static var directory: String {
        ProcessInfo.processInfo.environment["TMPDIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
    }

    /// Creates and locks this process's lock file (once; later calls do nothing).
    public static func acquire() throws {
        try heldLock.withLock { held in
            guard held == nil else { return }
            var template = Array((directory + "/" + OwnedNames.prefix + "\(getpid())-XXXXXX" + suffix).utf8CString)
            // mkstemps: O_CREAT|O_EXCL with a random name, mode 0600. Workers need not inherit it.
            let descriptor = mkstemps(&template, Int32(suffix.utf8.count))
            guard descriptor >= 0 else { throw IPCError.lastSystemError("mkstemps", directory) }
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
                let failure = IPCError.lastSystemError("flock", directory)
                close(descriptor)
                throw failure
            }
            held = (descriptor, String(cString: template))
        }
    }

    /// Removes the lock file and drops the lock (at the end of the run, whatever its outcome).
    public static func release() {
        heldLock.withLock { held in
            guard let lock = held else { return }
            unlink(lock.path)
            close(lock.descriptor)
            held = nil
        }
    }

    /// True when a lock file of this user for `pid` is locked by a live process.
    public static func isHeld(byRunOf pid: pid_t) -> Bool {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let prefix = OwnedNames.prefix + "\(pid)-"
        for entry in entries where entry.hasPrefix(prefix) && entry.hasSuffix(suffix) {
            let descriptor = open(directory + "/" + entry, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard descriptor >= 0 else { continue }
            defer { close(descriptor) }
            var info = stat()
            guard fstat(descriptor, &info) == 0, info.st_uid == getuid(), info.st_mode & S_IFMT == S_IFREG else { continue }
            if flock(descriptor, LOCK_SH | LOCK_NB) != 0, errno == EWOULDBLOCK { return true }
        }
        return false
    }
}
