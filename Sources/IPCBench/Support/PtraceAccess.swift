/// Whether one worker may use ptrace access on its sibling (process_vm_readv, pidfd_getfd): under
/// Yama scope 1 the target allows it with PR_SET_PTRACER; scope 2 needs CAP_SYS_PTRACE, 3 forbids it.
enum PtraceAccess {
    static let yamaScopePath = "/proc/sys/kernel/yama/ptrace_scope"

    /// Why Yama's policy keeps siblings from `use` here (e.g. "process_vm_readv"), or nil.
    static func yamaUnavailableReason(for use: String) -> String? {
        guard let scope = SystemFacts.readInt(yamaScopePath) else { return nil }
        if scope >= 3 {
            return "Yama ptrace_scope = 3 (\(yamaScopePath)) forbids \(use) between processes"
        }
        if scope == 2, !hasEffectiveCapability(19) {  // CAP_SYS_PTRACE
            return "Yama ptrace_scope = 2 (\(yamaScopePath)) lets only CAP_SYS_PTRACE use \(use); lower it to 1 or run with the capability"
        }
        return nil
    }

    /// Whether capability `bit` is in the caller's effective set (/proc/self/status, CapEff).
    static func hasEffectiveCapability(_ bit: Int) -> Bool {
        guard let status = SystemFacts.read("/proc/self/status"),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let mask = UInt64(String(line.dropFirst("CapEff:".count)).trimmingWhitespace(), radix: 16)
        else { return false }
        return mask & (1 << UInt64(bit)) != 0
    }
}
