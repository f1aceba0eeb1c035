import Glibc

/// Random text for names and secrets, from the system's generator (getrandom).
enum RandomText {
    /// `digits` lowercase hexadecimal digits.
    static func hex(digits: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var text = ""
        while text.count < digits {
            let word = String(generator.next() as UInt64, radix: 16)
            text += String(repeating: "0", count: 16 - word.count) + word
        }
        return String(text.prefix(digits))
    }
}

/// Small files the runs keep for themselves (run locks, System V ledgers), read back safely.
enum OwnFile {
    /// The whole of `path` when it is a regular file of this user of at most `limit` bytes, reached
    /// without following a link; nil otherwise.
    static func read(_ path: String, limit: Int) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        return read(descriptor: descriptor, limit: limit)
    }

    /// The same, from an open descriptor (its offset is not moved).
    static func read(descriptor: Int32, limit: Int) -> [UInt8]? {
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == getuid(), Int(info.st_size) <= limit else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        let count = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        return count == bytes.count ? bytes : nil
    }
}
