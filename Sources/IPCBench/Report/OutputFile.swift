import Glibc
import SystemPackage

/// A results file (CSV or metadata) this run writes: created with O_CREAT|O_EXCL|O_NOFOLLOW, or with
/// `replacing` an existing regular file truncated in place, and then written only through its own
/// descriptor, never renamed over. A path someone else prepared (a symbolic link, a device, a FIFO)
/// is refused, never followed or replaced. Write errors are one-line IPCErrors; an append that fails
/// is cut back, so what was written before it stays whole.
public final class OutputFile {
    public let path: String
    private let descriptor: Int32
    private var length: off_t = 0

    public init(creating path: String, replacing: Bool) throws {
        self.path = path
        var descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        if descriptor < 0, errno == EEXIST {
            try Self.checkReplaceable(path, replacing: replacing)
            // O_NONBLOCK: a FIFO swapped in meanwhile must not hang the open; fstat then refuses it.
            descriptor = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            if descriptor >= 0 {
                var info = stat()
                guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG, ftruncate(descriptor, 0) == 0 else {
                    close(descriptor)
                    throw IPCError.setup("'\(path)' is not a regular file; refusing to write results into it")
                }
                _ = fcntl(descriptor, F_SETFL, 0)
            }
        }
        guard descriptor >= 0 else {
            throw IPCError.setup("cannot create '\(path)': \(String(cString: strerror(errno)))")
        }
        self.descriptor = descriptor
    }

    deinit { close(descriptor) }

    /// Why `path` may not be written as a results file, checked before any work starts: an existing
    /// path is refused unless `replacing`, and then only if it is a regular file, not a link.
    public static func checkReplaceable(_ path: String, replacing: Bool) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        switch info.st_mode & S_IFMT {
        case S_IFLNK:
            throw IPCError.setup("'\(path)' is a symbolic link; refusing to follow it (give the real path)")
        case S_IFDIR:
            throw IPCError.setup("'\(path)' is a directory; give a file path such as \(path)/results.csv")
        case S_IFREG:
            guard replacing else { throw IPCError.setup("'\(path)' already exists; choose another path, or pass --force to overwrite it") }
        default:
            throw IPCError.setup("'\(path)' is a device, FIFO or socket, not a regular file; refusing to write results into it")
        }
    }

    /// Appends `bytes` and flushes them to the disk.
    public func append(_ bytes: [UInt8]) throws {
        var written = 0
        while written < bytes.count {
            do throws(Errno) {
                written += try SystemCall.retrying { bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + written, $0.count - written) } }
            } catch {
                _ = ftruncate(descriptor, length)
                _ = lseek(descriptor, length, SEEK_SET)
                throw IPCError.setup("cannot write to '\(path)': \(error.description)")
            }
        }
        length += off_t(written)
        _ = fsync(descriptor)
    }

    /// Replaces the whole content with `bytes`.
    public func rewrite(_ bytes: [UInt8]) throws {
        guard ftruncate(descriptor, 0) == 0, lseek(descriptor, 0, SEEK_SET) == 0 else {
            throw IPCError.setup("cannot rewrite '\(path)': \(String(cString: strerror(errno)))")
        }
        length = 0
        try append(bytes)
    }
}
