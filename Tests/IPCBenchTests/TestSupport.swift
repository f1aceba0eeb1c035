import Foundation
import Glibc
import IPCBench

/// Helpers shared by the tests: where the built `ipcbench` binary is, and how to run cells and the CLI.
enum TestSupport {
    /// The `ipcbench` executable built next to the test bundle (`swift build` / `swift test` build both).
    static var binary: String {
        let testBundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var directory = testBundle.deletingLastPathComponent()
        // The test runner may be inside the .xctest bundle on some layouts.
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("ipcbench").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory.deleteLastPathComponent()
        }
        return "ipcbench-binary-not-found"
    }

    /// A hung cell fails after 60 s, or after `IPCBENCH_TEST_CELL_TIMEOUT` seconds (scripts/mutation-check
    /// shortens it, since many of its mutants hang a peer rather than crash it).
    static var limits: PairLimits {
        let timeout = ProcessInfo.processInfo.environment["IPCBENCH_TEST_CELL_TIMEOUT"].flatMap(Double.init) ?? 60
        return PairLimits(workerExecutable: binary, cellTimeoutSeconds: timeout, setupTimeoutSeconds: 10)
    }

    /// The default placement (two CPUs when there are two).
    static var placement: Placement { Placement.defaultPlacement(allowedCPUs: Affinity.allowedCPUs()) }

    /// Runs the given cells in-process (workers are real processes) with exact message counts.
    static func run(
        _ mechanismIDs: [String], modes: [Mode] = Mode.allCases, sizes: [Int], messages: Int = 10_000,
        touch: Touch = .verify, fault: InjectedFault? = nil, placement: Placement? = nil, waits: [WaitStrategy] = [.block],
        variants: [String]? = nil
    ) -> [CellOutcome] {
        var configuration = RunConfiguration(
            mechanisms: mechanismIDs.map { MechanismRegistry.mechanism(id: $0)! }, modes: modes, sizes: sizes, touch: touch,
            placement: placement ?? self.placement, repetitions: 1, durationSeconds: 0, maximumMessages: messages,
            warmupMessages: 100, limits: limits, fault: fault)
        configuration.waits = waits
        configuration.variants = variants
        return SuiteRunner.run(configuration) { _, _, _ in }
    }

    struct CommandResult {
        var status: Int32
        var stdout: String
        var stderr: String
        /// The process that ran (gone by now): names it created carry this pid (OwnedNames).
        var pid: pid_t = 0
    }

    /// Runs `ipcbench` with arguments; `whileRunning` gets the pid once it has started. With `shell`,
    /// `/bin/sh` runs that command first (e.g. `ulimit -n 100`) and then execs the binary.
    static func runCLI(
        _ arguments: [String], environment: [String: String] = [:], shell: String? = nil, whileRunning: ((pid_t) -> Void)? = nil
    ) throws -> CommandResult {
        let process = Process()
        // Plots are drawn (and tested) by scripts/plot.py's own tests; here they would only add files and time.
        let arguments = arguments.first == "run" && !arguments.contains("--no-plots") ? arguments + ["--no-plots"] : arguments
        if let shell {
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", shell + "; exec \"$0\" \"$@\"", binary] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
        }
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        whileRunning?(process.processIdentifier)
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CommandResult(
            status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self),
            pid: process.processIdentifier)
    }

    /// Runs `ipcbench run` with `arguments` (and `--out`) in a scratch TMPDIR, SIGKILLs the second of
    /// the `count` workers whose task has `role` half a second into their timed loops, and returns the
    /// result, the CSV rows, whether the kill happened, and the scratch directory (the caller removes it).
    static func runKillingOneWorker(_ arguments: [String], role: Role, count: Int) throws -> (CommandResult, [[String: String]], Bool, String) {
        let scratch = temporaryDirectory()
        let csv = scratch + "/out.csv"
        var injected = false
        let result = try runCLI(["run"] + arguments + ["--out", csv], environment: ["TMPDIR": scratch]) { pid in
            injected = waitFor(seconds: 15) {
                let workers = children(of: pid).filter { $0.commandLine.contains("\"role\":\"\(role.rawValue)\"") }
                guard workers.count == count else { return false }
                usleep(500_000) // inside the timed loop
                return kill(workers[1].pid, SIGKILL) == 0
            }
        }
        return (result, try readCSV(csv), injected, scratch)
    }

    /// A fresh private directory for one test, used as TMPDIR so leftovers can be checked.
    static func temporaryDirectory() -> String {
        var template = Array((NSTemporaryDirectory() + "/ipcbench-test-XXXXXX").utf8CString)
        return String(cString: mkdtemp(&template)!)
    }

    /// Parses the CSV the tool writes (fields may be quoted).
    static func readCSV(_ path: String) throws -> [[String: String]] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var lines = text.split(separator: "\n").map { parseCSVLine(String($0)) }
        guard !lines.isEmpty else { return [] }
        let header = lines.removeFirst()
        return lines.map { Dictionary(uniqueKeysWithValues: zip(header, $0)) }
    }

    static func parseCSVLine(_ line: String) -> [String] {
        var fields: [String] = []
        var current = ""
        var quoted = false
        var iterator = Array(line).makeIterator()
        while let character = iterator.next() {
            if quoted {
                if character == "\"" {
                    if let next = iterator.next() {
                        if next == "\"" { current.append("\"") } else { quoted = false; if next == "," { fields.append(current); current = "" } else { current.append(next) } }
                    } else { quoted = false }
                } else { current.append(character) }
            } else if character == "\"" {
                quoted = true
            } else if character == "," {
                fields.append(current); current = ""
            } else { current.append(character) }
        }
        fields.append(current)
        return fields
    }

    /// Child pids of `pid` (from /proc: each thread lists the children it started), with their command lines.
    static func children(of pid: pid_t) -> [(pid: pid_t, commandLine: String)] {
        let text = entries(in: "/proc/\(pid)/task").compactMap { try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/children", encoding: .utf8) }.joined(separator: " ")
        return text.split(separator: " ").compactMap { Int32($0) }.map { child in
            let raw = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(child)/cmdline"))) ?? Data()
            return (child, String(decoding: raw.map { $0 == 0 ? 32 : $0 }, as: UTF8.self))
        }
    }

    /// Waits until `condition` holds or `seconds` pass.
    static func waitFor(seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    static func entries(in directory: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    }
}
