import ArgumentParser
import IPCBench

struct CleanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clean",
        abstract: "Remove what crashed earlier runs left behind (temp directories, POSIX and System V IPC objects).",
        discussion: """
            Only objects tagged as ipcbench's (names starting with ipcbench-<pid>, System V keys with \
            ipcbench's tag), owned by you, whose run is no longer alive are touched.
            """)

    @Flag(help: "Only list what would be removed.")
    var dryRun = false

    func run() throws {
        let (found, notes) = Leftovers.find()
        notes.forEach { print("note: \($0)") }
        guard !found.isEmpty else {
            print("Nothing left behind by earlier runs.")
            return
        }
        var failures = 0
        for leftover in found {
            if dryRun {
                print("would remove \(leftover)")
            } else if let error = Leftovers.remove(leftover) {
                failures += 1
                print("could not remove \(leftover): \(error)")
            } else {
                print("removed \(leftover)")
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}
