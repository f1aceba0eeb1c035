import Foundation
import Glibc
@testable import IPCBench
import Testing

/// Results files are created, never replaced or followed (issue 17, items 3, 4 and 10): a path
/// someone else prepared is refused, a write error ends the run in one line with the rows written so
/// far intact, and out-of-range numbers are refused before any file is written.
@Suite("Results files: created, never followed or replaced; write errors and bad numbers refused in one line")
struct OutputSafetyTests {
    static let shortRun = ["run", "--mechanisms", "pipe", "--sizes", "64", "--mode", "latency", "--placements", "same-cpu",
                           "--repetitions", "1", "--messages", "200", "--quiet"]

    /// Runs `command` with bash (for its `ulimit` and `trap`); its exit status and stderr.
    static func shell(_ command: String) throws -> (status: Int32, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", command]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stderr)
    }

    static func inode(_ path: String) -> UInt {
        var info = stat()
        return lstat(path, &info) == 0 ? UInt(info.st_ino) : 0
    }

    @Test("An existing --out is refused and left alone; --force rewrites it in place (same file, so hard links see it)")
    func existingOutRefused() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let csv = scratch + "/r.csv"
        try "precious\n".write(toFile: csv, atomically: false, encoding: .utf8)
        let before = Self.inode(csv)
        let refused = try TestSupport.runCLI(Self.shortRun + ["--out", csv])
        #expect(refused.status == 2)
        #expect(refused.stderr.contains("already exists") && refused.stderr.contains("--force"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: csv, encoding: .utf8) == "precious\n")
        #expect(!FileManager.default.fileExists(atPath: scratch + "/r.metadata.json"))

        let forced = try TestSupport.runCLI(Self.shortRun + ["--out", csv, "--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(Self.inode(csv) == before, "the file was replaced, not rewritten")
        #expect(try TestSupport.readCSV(csv).count == 1)
    }

    @Test("A symbolic link at --out (dangling or not) is refused; nothing is created where it points")
    func symbolicLinkRefused() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let victim = scratch + "/victim"
        try "keep\n".write(toFile: victim, atomically: false, encoding: .utf8)
        for (link, target) in [("/to-file.csv", victim), ("/dangling.csv", scratch + "/created-by-root")] {
            #expect(symlink(target, scratch + link) == 0)
            for extra in [[], ["--force"]] {
                let result = try TestSupport.runCLI(Self.shortRun + ["--out", scratch + link] + extra)
                #expect(result.status == 2, "\(link) \(extra)")
                #expect(result.stderr.contains("symbolic link"), "\(result.stderr)")
            }
        }
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep\n")
        #expect(!FileManager.default.fileExists(atPath: scratch + "/created-by-root"))
    }

    @Test("A FIFO at --out is refused at once instead of hanging the run; so is a metadata path that is a link")
    func specialFilesRefused() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        #expect(mkfifo(scratch + "/fifo.csv", 0o600) == 0)
        let fifo = try TestSupport.runCLI(Self.shortRun + ["--out", scratch + "/fifo.csv", "--force"])
        #expect(fifo.status == 2)
        #expect(fifo.stderr.contains("not a regular file"), "\(fifo.stderr)")
        #expect(throws: IPCError.self) { try OutputFile.checkReplaceable("/dev/null", replacing: true) }

        #expect(symlink(scratch + "/elsewhere", scratch + "/m.metadata.json") == 0)
        let metadata = try TestSupport.runCLI(Self.shortRun + ["--out", scratch + "/m.csv"])
        #expect(metadata.status == 2)
        #expect(!FileManager.default.fileExists(atPath: scratch + "/m.csv"))
        #expect(!FileManager.default.fileExists(atPath: scratch + "/elsewhere"))
    }

    @Test("Two runs with the default output path started together write two directories, every row in each")
    func defaultDirectoriesAreDistinct() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let arguments = ["run", "--mechanisms", "pipe", "--sizes", "64,128", "--mode", "latency", "--repetitions", "1",
                         "--messages", "500", "--quiet", "--no-plots"]
        let processes = (0..<2).map { _ in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TestSupport.binary)
            process.arguments = arguments
            process.currentDirectoryURL = URL(fileURLWithPath: scratch)
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            return process
        }
        for process in processes { try process.run() }
        for process in processes { process.waitUntilExit() }
        #expect(processes.allSatisfy { $0.terminationStatus == 0 })
        let directories = TestSupport.entries(in: scratch + "/ipcbench-out")
        #expect(directories.count == 2, "\(directories)")
        for directory in directories {
            #expect(try TestSupport.readCSV(scratch + "/ipcbench-out/\(directory)/results.csv").count == 4)
        }
    }

    @Test("--json writes the rows beside the CSV with its column names, typed; an existing file is refused without --force")
    func jsonResults() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let arguments = ["run", "--mechanisms", "pipe", "--sizes", "64,128", "--mode", "latency,throughput", "--placements", "cross-cpu",
                         "--repetitions", "2", "--messages", "500", "--quiet", "--no-plots", "--json", "--out", scratch + "/r.csv"]
        let result = try TestSupport.runCLI(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        let csv = try TestSupport.readCSV(scratch + "/r.csv")
        let rows = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: scratch + "/r.json"))) as? [[String: Any]])
        #expect(rows.count == csv.count && rows.count == 4)
        for (row, csvRow) in zip(rows, csv) {
            #expect(Set(row.keys) == Set(CSVReport.columns))
            #expect(row["mechanism"] as? String == "pipe" && row["status"] as? String == "ok")
            #expect(row["message_bytes"] as? Int == Int(csvRow["message_bytes"] ?? ""))
            #expect((row["headline_per_repetition"] as? [Double])?.count == 2, "\(row["headline_per_repetition"] ?? "none")")
            let latency = row["mode"] as? String == "latency"
            #expect(latency ? row["rtt_half_p50_ns"] is Double : row["rtt_half_p50_ns"] is NSNull, "\(row["rtt_half_p50_ns"] ?? "none")")
        }
        let again = try TestSupport.runCLI(arguments.filter { $0 != "--out" && !$0.hasSuffix("/r.csv") } + ["--out", scratch + "/other.csv"])
        #expect(again.status == 0)
        try "keep".write(toFile: scratch + "/third.json", atomically: true, encoding: .utf8)
        let refused = try TestSupport.runCLI(arguments.filter { $0 != "--out" && !$0.hasSuffix("/r.csv") } + ["--out", scratch + "/third.csv"])
        #expect(refused.status == 2 && refused.stderr.contains("third.json"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: scratch + "/third.json", encoding: .utf8) == "keep")
    }

    @Test("A full disk (a file-size limit here) ends the run in one line, exit 1, whole rows only, metadata says failed")
    func writeErrorSurfaces() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let csv = scratch + "/full.csv"
        // 6 KiB per file (bash counts `ulimit -f` in KiB): the metadata (≈4 KB here) and the header fit,
        // not all 24 rows (≈350 B each). SIGXFSZ ignored, as a full disk does not signal: writes beyond
        // the limit fail with EFBIG.
        let command = "trap '' XFSZ; ulimit -f 6; exec '\(TestSupport.binary)' run --mechanisms pipe,fifo --sizes 16,64,128,256,512,1024 "
            + "--mode latency,throughput --placements same-cpu --repetitions 1 --messages 300 --quiet --no-plots --out '\(csv)'"
        let (status, stderr) = try Self.shell(command)
        #expect(status == 1, "\(stderr)")
        // The error itself is one line (a warning about the machine, e.g. another run's leftovers, may precede it).
        let lines = stderr.split(separator: "\n").filter { !$0.hasPrefix("ipcbench: warning: ") }
        #expect(lines.count == 1 && lines[0].contains("cannot write to '\(csv)'"), "\(stderr)")
        let text = try String(contentsOfFile: csv, encoding: .utf8)
        #expect(text.hasSuffix("\n"), "the CSV ends in half a row")
        let rows = try TestSupport.readCSV(csv)
        #expect(rows.count > 0 && rows.count < 24)
        for row in rows { #expect(row["status"] == "ok" && row.count == CSVReport.columns.count) }
        let metadata = try String(contentsOfFile: scratch + "/full.metadata.json", encoding: .utf8)
        #expect(metadata.contains("\"state\" : \"failed\""), "\(metadata.prefix(200))")
    }

    @Test("Numbers out of range, negative or not finite are refused with the allowed range, before any file is written",
          arguments: [("--duration", "-1"), ("--duration", "1e30"), ("--duration", "inf"), ("--duration", "1e-12"),
                      ("--cell-timeout", "1e30"), ("--cell-timeout", "-5"), ("--repetitions", "-3"), ("--repetitions", "100000"),
                      ("--messages", "-1"), ("--warmup", "-1")])
    func numbersOutOfRange(option: String, value: String) throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let result = try TestSupport.runCLI(["run", "--mechanisms", "pipe", "--out", scratch + "/r.csv", option, value])
        #expect(result.status == 2)
        #expect(result.stderr.contains(option) && result.stderr.contains("allowed"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: scratch + "/r.csv"))
    }

    @Test("A low open-file limit (ulimit -n 64) still runs every cell")
    func lowDescriptorLimit() throws {
        let scratch = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let csv = scratch + "/fds.csv"
        let command = "ulimit -n 64; exec '\(TestSupport.binary)' run --mechanisms pipe,shm-posix --variants write/read,in-place/eventfd "
            + "--sizes 64 --mode latency --placements same-cpu --repetitions 2 --messages 200 --quiet --no-plots --out '\(csv)'"
        let (status, stderr) = try Self.shell(command)
        #expect(status == 0, "\(stderr)")
        let rows = try TestSupport.readCSV(csv)
        #expect(rows.count == 2 && rows.allSatisfy { $0["status"] == "ok" }, "\(rows.map { $0["status"] ?? "" })")
    }

    @Test("A worker started by hand with a bad task says why on stderr")
    func workerSaysWhy() throws {
        let result = try TestSupport.runCLI(["worker", "--task", "{}"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("ipcbench worker:"), "\(result.stderr)")
    }
}

@Suite("Text from elsewhere is made safe for terminals and spreadsheets")
struct DisplayTextTests {
    @Test("Terminal escapes, carriage returns and bidirectional overrides are spelled out; formulas are quoted")
    func controlCharactersAndFormulas() {
        let hostile = "\u{1B}]0;owned\u{07}\u{1B}[2Jdone\rfake ok \u{202E}gnp.exe"
        let shown = DisplayText.printable(hostile)
        #expect(!shown.unicodeScalars.contains { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format })
        #expect(shown.contains("\\u{1b}]0;owned\\u{7}") && shown.contains("\\u{d}fake") && shown.contains("\\u{202e}"))
        #expect(DisplayText.printable("plain text, ünïcode ✓") == "plain text, ünïcode ✓")
        for formula in ["=HYPERLINK(\"http://x\")", "+1+1", "-2+3", "@SUM(A1)"] {
            #expect(DisplayText.csvCell(formula) == "'" + formula)
        }
        #expect(DisplayText.csvCell("failed: server: =1+1") == "failed: server: =1+1")
    }

    @Test("A failed cell's status from a hostile server reaches the CSV as inert text")
    func statusColumnIsInert() throws {
        var outcome = CellOutcome(cell: scriptedCsvCell(), status: .failed("=cmd|' /C calc'!A0\u{1B}[31m"))
        outcome.repetitions = 1
        let fields = CSVReport.fields(outcome, runID: "r")
        let status = try #require(fields.last)
        #expect(status.hasPrefix("failed: "))
        #expect(!status.contains("\u{1B}"))
        var remote = CellOutcome(cell: scriptedCsvCell(remote: "=evil"), status: .ok)
        remote.repetitions = 1
        #expect(CSVReport.fields(remote, runID: "r").contains("'=evil"))
    }

    func scriptedCsvCell(remote: String? = nil) -> Cell {
        var cell = Cell(mechanism: MechanismRegistry.mechanism(id: "pipe")!, mode: .latency, variant: "write/read", messageBytes: 64,
                        touch: .read, placement: Placement(producerCPU: nil, consumerCPU: nil))
        cell.remote = remote
        return cell
    }
}
