import CIPCShim
import Glibc

/// CPU pinning and the CPUs this process may use.
public enum Affinity {
    public static func pin(toCPU cpu: Int) throws {
        let result = ipcb_pin_to_cpu(Int32(cpu))
        guard result == 0 else { throw IPCError.system(call: "sched_setaffinity", errno: result, context: "CPU \(cpu)") }
    }

    @inline(__always)
    public static func currentCPU() -> Int { Int(ipcb_current_cpu()) }

    /// CPUs in this process's affinity mask (what a worker can actually be pinned to), ascending.
    public static func allowedCPUs() -> [Int] {
        var cpus = [Int32](repeating: 0, count: 4096)
        let count = Int(ipcb_allowed_cpus(&cpus, Int32(cpus.count)))
        guard count > 0 else { return [] }
        return cpus.prefix(min(count, cpus.count)).map(Int.init)
    }

    /// Parses a kernel CPU list such as "0-3,8,10-11" (the format of /sys/devices/system/cpu/online).
    public static func parseCPUList(_ text: String) -> [Int]? {
        var cpus: [Int] = []
        for part in text.trimmingWhitespace().split(separator: ",") where !part.isEmpty {
            let bounds = part.split(separator: "-")
            guard let low = Int(bounds[0]) else { return nil }
            let high = bounds.count > 1 ? Int(bounds[1]) : low
            guard let high, high >= low else { return nil }
            cpus.append(contentsOf: low...high)
        }
        return cpus
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
