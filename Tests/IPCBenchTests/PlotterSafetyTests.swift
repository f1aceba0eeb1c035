import Foundation
import Glibc
import Testing

/// The plots a run draws at its end (issue 17, items 1, 2 and the tail of 11): the plotter never writes
/// through a symlink or into a directory the run did not create or own, distinct CSVs in one directory get
/// distinct plot folders, and the binary never looks for a plotter in the directories above it.
///
/// These runs draw plots (TestSupport.runCLI turns them off), so they need `scripts/setup-plotting` to have
/// been run in the package the binary was built from; the tests that need real plots say so when it is missing.
@Suite(.serialized)
struct PlotterSafetyTests {
    /// One cell, as short as a run gets.
    static let quickRun = ["run", "--quiet", "--mechanisms", "pipe", "--sizes", "64", "--mode", "latency",
                           "--placements", "cross-cpu", "--repetitions", "1", "--duration", "0.01", "--warmup", "10"]

    /// The package the test binary was built from (Tests/IPCBenchTests/PlotterSafetyTests.swift → ../../), where
    /// the ipcbench binary under test finds scripts/plot.py and .venv.
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    static var plottingIsSetUp: Bool {
        FileManager.default.isExecutableFile(atPath: packageRoot + "/.venv/bin/python")
    }

    /// Runs `binary run …` with plots on; returns the exit status and stdout + stderr.
    static func run(_ arguments: [String], binary: String = TestSupport.binary, environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env["IPCBENCH_PLOTTER"] = nil
        env.merge(environment) { $1 }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static func plotsLine(_ output: String) -> String {
        output.split(separator: "\n").last { $0.hasPrefix("Plots:") }.map(String.init) ?? "(no Plots: line in:\n\(output))"
    }

    static func write(_ text: String, to path: String, mode: mode_t = 0o644) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, mode)
    }

    /// TestSupport's private temporary directory, spelled as the paths the run prints (no "//").
    static func temporaryDirectory() -> String {
        URL(fileURLWithPath: TestSupport.temporaryDirectory()).standardizedFileURL.path
    }

    static func read(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

    static func mkdir(_ path: String, mode: mode_t = 0o755) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        chmod(path, mode)
    }

    // MARK: Item 1: root overwrites any file

    @Test(.enabled(if: plottingIsSetUp, "scripts/setup-plotting has not been run"))
    func symlinkedPlotDirectoryIsRefused() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let elsewhere = directory + "/elsewhere"
        try Self.mkdir(elsewhere)
        try Self.write("keep me", to: elsewhere + "/index.html")
        try FileManager.default.createSymbolicLink(atPath: directory + "/plots", withDestinationPath: elsewhere)

        let result = try Self.run(Self.quickRun + ["--out", directory + "/results.csv"])
        #expect(result.status == 0, "\(result.output)")
        let line = Self.plotsLine(result.output)
        #expect(line.contains("refusing") && line.contains("symlink"), "\(line)")
        #expect(Self.read(elsewhere + "/index.html") == "keep me")
        #expect(TestSupport.entries(in: elsewhere) == ["index.html"])
    }

    @Test(.enabled(if: plottingIsSetUp, "scripts/setup-plotting has not been run"))
    func symlinkInsideThePlotDirectoryIsRefused() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let victim = directory + "/victim"
        try Self.write("keep me", to: victim)
        // Both the old shared folder and the per-CSV one hold the trap.
        for folder in ["plots", "r.plots"] {
            try Self.mkdir(directory + "/" + folder)
            try FileManager.default.createSymbolicLink(atPath: directory + "/\(folder)/index.html", withDestinationPath: victim)
        }

        let result = try Self.run(Self.quickRun + ["--out", directory + "/r.csv"])
        #expect(result.status == 0, "\(result.output)")
        let line = Self.plotsLine(result.output)
        #expect(line.contains("refusing to replace \(directory)/r.plots/index.html"), "\(line)")
        #expect(Self.read(victim) == "keep me")
        for folder in ["plots", "r.plots"] {
            #expect(TestSupport.entries(in: directory + "/" + folder) == ["index.html"], "nothing drawn in \(folder)")
        }
    }

    @Test(.enabled(if: plottingIsSetUp && geteuid() == 0, "needs root (to give a directory to another user) and scripts/setup-plotting"))
    func plotDirectoryOfAnotherUserIsRefused() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        chmod(directory, 0o755)
        let plots = directory + "/plots"
        try Self.mkdir(plots, mode: 0o777)
        #expect(chown(plots, 65534, 65534) == 0)  // nobody: a directory a local user made in a shared place

        let result = try Self.run(Self.quickRun + ["--out", directory + "/results.csv"])
        #expect(result.status == 0, "\(result.output)")
        let line = Self.plotsLine(result.output)
        #expect(line.contains("refusing") && line.contains("belongs to uid 65534"), "\(line)")
        #expect(TestSupport.entries(in: plots).isEmpty)
    }

    // MARK: Item 11 (tail): all CSVs in one directory shared one plots/

    @Test(.enabled(if: plottingIsSetUp, "scripts/setup-plotting has not been run"))
    func distinctCSVsGetDistinctPlotFolders() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for name in ["a", "b"] {
            let result = try Self.run(Self.quickRun + ["--out", directory + "/\(name).csv"])
            #expect(result.status == 0, "\(result.output)")
            #expect(Self.plotsLine(result.output) == "Plots: \(directory)/\(name).plots/index.html")
            let index = Self.read(directory + "/\(name).plots/index.html") ?? ""
            #expect(index.contains("\(name).csv"), "the index of \(name).csv describes \(name).csv")
        }
        #expect(!FileManager.default.fileExists(atPath: directory + "/plots"))
        // Nothing but plots in the folders: no temporary file left behind.
        for name in ["a", "b"] {
            #expect(TestSupport.entries(in: directory + "/\(name).plots").allSatisfy { !$0.hasPrefix(".") })
        }
    }

    // MARK: Item 2: root runs another user's code

    /// A package tree with a plot.py and a ".venv/bin/python" that only records that it ran (and with what).
    static func fakePackage(in root: String, marker: String) throws -> (script: String, python: String) {
        try mkdir(root + "/scripts")
        try mkdir(root + "/.venv/bin")
        let script = root + "/scripts/plot.py"
        try write("raise SystemExit('not this one')\n", to: script)
        let python = root + "/.venv/bin/python"
        try write("#!/bin/sh\nprintf '%s\\n' \"$@\" > '\(marker)'\n", to: python, mode: 0o755)
        return (script, python)
    }

    @Test func parentDirectoriesAreNotSearched() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        chmod(directory, 0o755)
        let marker = directory + "/ran"
        // Another user's checkout-like tree above a copy of the binary: /tmp/…/scripts/plot.py, /tmp/…/.venv.
        _ = try Self.fakePackage(in: directory, marker: marker)
        let bin = directory + "/copy/bin"
        try Self.mkdir(bin)
        try FileManager.default.copyItem(atPath: TestSupport.binary, toPath: bin + "/ipcbench")
        try Self.mkdir(directory + "/out")

        let result = try Self.run(Self.quickRun + ["--out", directory + "/out/results.csv"], binary: bin + "/ipcbench")
        #expect(result.status == 0, "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: marker), "ran \(directory)/.venv/bin/python: \(Self.read(marker) ?? "")")
        let line = Self.plotsLine(result.output)
        #expect(line.hasPrefix("Plots:") && !line.contains(directory + "/scripts") && !line.contains(directory + "/.venv"), "\(line)")
    }

    @Test func explicitPlotterRunsOnlyWhenNoOneElseCanChangeIt() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        chmod(directory, 0o755)
        let marker = directory + "/ran"
        let package = directory + "/package"
        let (script, python) = try Self.fakePackage(in: package, marker: marker)
        try Self.mkdir(directory + "/out")
        let csv = directory + "/out/r.csv"  // each later run writes a CSV of its own (r2, r3, …)
        let environment = ["IPCBENCH_PLOTTER": script]

        // Safe (ours, written by no one else): it runs, with the CSV and the per-CSV plot folder.
        var result = try Self.run(Self.quickRun + ["--out", csv], environment: environment)
        #expect(result.status == 0, "\(result.output)")
        #expect(Self.read(marker)?.split(separator: "\n").map(String.init) == ["-I", script, csv, "--out", directory + "/out/r.plots"])
        #expect(Self.plotsLine(result.output) == "Plots: \(directory)/out/r.plots/index.html")

        // A directory on the way that anyone may write to: not run, and the run says why in one line.
        try FileManager.default.removeItem(atPath: marker)
        chmod(package + "/scripts", 0o777)
        result = try Self.run(Self.quickRun + ["--out", directory + "/out/r2.csv"], environment: environment)
        #expect(!FileManager.default.fileExists(atPath: marker))
        var line = Self.plotsLine(result.output)
        #expect(line.hasPrefix("Plots: skipped:") && line.contains("\(package)/scripts is writable by everyone"), "\(line)")
        chmod(package + "/scripts", 0o755)

        // The interpreter's packages in a directory anyone may write to: not run either.
        let sitePackages = package + "/.venv/lib/python3.99/site-packages"
        try Self.mkdir(sitePackages, mode: 0o777)
        result = try Self.run(Self.quickRun + ["--out", directory + "/out/r3.csv"], environment: environment)
        #expect(!FileManager.default.fileExists(atPath: marker))
        line = Self.plotsLine(result.output)
        #expect(line.contains("\(sitePackages) is writable by everyone"), "\(line)")
        chmod(sitePackages, 0o755)

        // The interpreter is a symlink into a group-writable directory: its target counts, not the link.
        let shared = directory + "/shared"
        try Self.mkdir(shared, mode: 0o775)
        try FileManager.default.moveItem(atPath: python, toPath: shared + "/python")
        try FileManager.default.createSymbolicLink(atPath: python, withDestinationPath: "../../../shared/python")
        result = try Self.run(Self.quickRun + ["--out", directory + "/out/r4.csv"], environment: environment)
        #expect(!FileManager.default.fileExists(atPath: marker))
        line = Self.plotsLine(result.output)
        #expect(line.contains("\(shared) is writable by its group"), "\(line)")

        // Files of another user: not run by root.
        if geteuid() == 0 {
            chmod(shared, 0o755)
            #expect(chown(script, 65534, 65534) == 0)
            result = try Self.run(Self.quickRun + ["--out", directory + "/out/r5.csv"], environment: environment)
            #expect(!FileManager.default.fileExists(atPath: marker))
            line = Self.plotsLine(result.output)
            #expect(line.contains("\(script) belongs to uid 65534"), "\(line)")
        }
    }
}
