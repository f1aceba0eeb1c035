import Glibc

/// A random secret per repetition, known to its two workers only, so that a consumer whose endpoint
/// any local user could reach (a TCP port on 127.0.0.1) accepts only this cell's producer. It reaches
/// the workers in their environment (`/proc/PID/environ` is readable by their owner alone), never on
/// their command line, and is checked before the first message, outside the timed loop.
public enum PeerSecret {
    public static let environmentName = "IPCBENCH_PEER_SECRET"
    /// 16 random bytes as 32 hexadecimal characters, which is also what the producer sends.
    public static let length = 32

    public static func make() -> String { RandomText.hex(digits: length) }

    /// The worker's secret, removed from its environment so nothing it starts inherits it.
    static func takeFromEnvironment() -> String? {
        guard let value = getenv(environmentName) else { return nil }
        let secret = String(cString: value)
        unsetenv(environmentName)
        return secret.utf8.count == length ? secret : nil
    }
}
