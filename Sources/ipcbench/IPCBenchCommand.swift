import ArgumentParser
import Foundation
import IPCBench

@main
struct IPCBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipcbench",
        abstract: "Latency and throughput of inter-process communication mechanisms, measured between real process pairs.",
        discussion: """
            Every cell (mechanism × mode × message size) runs as a producer and a consumer process,
            pinned to CPUs, synchronised at a barrier, warmed up, then timed. Results go to a CSV with
            a metadata.json beside it, and a summary table is printed.
            """,
        version: RunMetadata.version,
        subcommands: [RunCommand.self, ServeCommand.self, ListCommand.self, TopologyCommand.self, CompareCommand.self, CleanCommand.self, WorkerCommand.self],
        defaultSubcommand: nil
    )

    /// Usage errors (bad options or values) exit with status 2 and one line naming the problem.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                let message = fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
                try? FileHandle.standardError.write(contentsOf: Data("ipcbench: \(message)\n".utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
}

/// The hidden subcommand a worker process runs: one side of one repetition.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", abstract: "Internal: one side of a process pair.", shouldDisplay: false)

    @Option(help: "The worker's task as JSON.")
    var task: String

    @Option(help: "The parent's pid: the worker exits at once if it has already been re-parented.")
    var parentPid: Int32?

    func run() throws {
        Foundation.exit(Worker.run(taskJSON: task, parentPID: parentPid))
    }
}
