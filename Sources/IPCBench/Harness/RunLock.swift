import Foundation
import Glibc
import Synchronization

private let heldLock = Mutex<(descriptor: Int32, path: String)?>(nil)

/// Held for as long as a run (or `serve`) may own IPC objects: a file
/// `<TMPDIR>/ipcbench-<pid>-<random>.runlock`, created exclusively and locked with flock. `clean`
/// takes a pid's objects for a live run's while one of this user's lock files for that pid is
/// locked, so a renamed binary, or a run in another PID namespace sharing the temp directory, is
/// never cleaned up under. A crashed run's lock file is unlocked and is itself a leftover.
///
/// The lock file also names the run's metadata file and run id (`record`), so `clean`, finding a
/// killed run's lock, can mark that metadata `killed` instead of leaving it `running` for ever.
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

    /// For a process that runs cells without `ipcbench run` (the library used in-process, the tests):
    /// takes the lock if nobody in this process has, and releases it when the process exits.
    public static func holdUntilExit() {
        let taken = heldLock.withLock { $0 == nil }
        guard taken, (try? acquire()) != nil else { return }
        atexit { RunLock.release() }
    }

    /// Writes into the held lock file which metadata file and run id this run has (once they exist).
    public static func record(metadataPath: String, runID: String) {
        heldLock.withLock { held in
            guard let lock = held else { return }
            let absolute = metadataPath.hasPrefix("/") ? metadataPath : FileManager.default.currentDirectoryPath + "/" + metadataPath
            let text = Array("\(metadataKey)\(absolute)\n\(runIDKey)\(runID)\n".utf8)
            _ = text.withUnsafeBytes { pwrite(lock.descriptor, $0.baseAddress, $0.count, 0) }
        }
    }

    static let metadataKey = "metadata="
    static let runIDKey = "run_id="
    public static let killedState = "killed"

    /// For a dead run's lock file (not held): if its metadata file still says `running`, rewrites its
    /// state as `killed`. The metadata must be a regular file of this user, reached without following
    /// a link, and carry the lock's run id. Returns the metadata path when it was marked.
    public static func markRunKilled(lockFile: String) -> String? {
        guard let lockText = OwnFile.read(lockFile, limit: 8192).map({ String(decoding: $0, as: UTF8.self) }) else { return nil }
        let lines = lockText.split(separator: "\n").map(String.init)
        guard let path = lines.first(where: { $0.hasPrefix(metadataKey) })?.dropFirst(metadataKey.count),
              let runID = lines.first(where: { $0.hasPrefix(runIDKey) })?.dropFirst(runIDKey.count)
        else { return nil }
        let descriptor = open(String(path), O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        guard let bytes = OwnFile.read(descriptor: descriptor, limit: 16 << 20),
              var metadata = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
              metadata["run_id"] as? String == String(runID), metadata["state"] as? String == "running"
        else { return nil }
        metadata["state"] = killedState
        metadata["killed_note"] = "the run ended without writing its outcome (SIGKILL, power loss or OOM); found by `ipcbench clean` at \(RunMetadata.timestamp())"
        guard let json = try? JSONSerialization.data(withJSONObject: metadata, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]) else { return nil }
        let out = Array(json) + [0x0A]
        guard ftruncate(descriptor, 0) == 0,
              out.withUnsafeBytes({ pwrite(descriptor, $0.baseAddress, $0.count, 0) }) == out.count
        else { return nil }
        return String(path)
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
