import ArgumentParser
import IPCBench

struct CleanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean",
        abstract: "Remove what crashed earlier runs left behind (temp directories, POSIX and System V IPC objects).",
        discussion: """
            Only objects of yours whose run is no longer alive are touched: names starting with \
            ipcbench-<pid>, and System V objects the run's cell directory lists. System V objects with \
            ipcbench's key tag that no cell directory lists are reported with the ipcrm command that \
            removes them, never removed.
            """)

    @Flag(help: "Only list what would be removed.")
    var dryRun = false

    func run() throws {
        let (found, notes, unattributed) = Leftovers.find()
        notes.forEach { print("note: \($0)") }
        unattributed.forEach { print("not removed: \($0)") }
        guard !found.isEmpty || !unattributed.isEmpty else {
            print("Nothing left behind by earlier runs.")
            return
        }
        var failures = 0
        for leftover in found {
            if dryRun {
                print("would remove \(leftover)")
                continue
            }
            // A killed run's lock names its metadata, which still says `running`: say what happened.
            if leftover.kind == .runLock, let metadata = RunLock.markRunKilled(lockFile: leftover.name) {
                print("marked \(metadata) as killed")
            }
            if let error = Leftovers.remove(leftover) {
                failures += 1
                print("could not remove \(leftover): \(error)")
            } else {
                print("removed \(leftover)")
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}
