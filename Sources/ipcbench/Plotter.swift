import Foundation
import Glibc

/// Draws the plots for a results CSV with scripts/plot.py at the end of a run.
///
/// Which plotter runs is never searched for: it is `scripts/plot.py` with `.venv/bin/python` of the package
/// this binary was built from (its root recorded at build time from this file's path), or the `plot.py` named
/// by `IPCBENCH_PLOTTER` (run with the `.venv/bin/python` of the package holding it). Either way it runs only
/// when the script, the interpreter (and where their symlinks lead) and every directory above them up to `/`
/// belong to root or to the user running ipcbench and cannot be written by anyone else (as ssh's StrictModes
/// asks; a root-owned sticky directory such as /tmp is allowed) — so root never runs code another user could
/// have changed. Otherwise the run says in one line why the plots were skipped and how to draw them.
enum Plotter {
    /// The environment variable naming a `plot.py` to use instead of the built-in package's.
    static let environmentVariable = "IPCBENCH_PLOTTER"

    /// The root of the package this binary was built from: Sources/ipcbench/Plotter.swift → ../../
    static let packageRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// Where the plots for a CSV go (the same pairing as the metadata file, and plot.py's default):
    /// `plots/` beside `results.csv`, `X.plots/` beside `X.csv`, so distinct CSVs in one directory get
    /// distinct plot folders.
    static func plotDirectory(forCSV csvPath: String) -> String {
        let url = URL(fileURLWithPath: csvPath)
        let name = url.lastPathComponent
        let stem = name.lowercased().hasSuffix(".csv") ? String(name.dropLast(4)) : name
        return url.deletingLastPathComponent().appendingPathComponent(name == "results.csv" ? "plots" : "\(stem).plots").path
    }

    /// Returns a line for the user: where the plots are, or why they were not drawn and how to get them.
    static func draw(csvPath: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let manual = "draw them with `.venv/bin/python scripts/plot.py \(csvPath)` from an ipcbench checkout (after scripts/setup-plotting)"
        let explicit = environment[environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
        let script = explicit.map { $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 }
            ?? packageRoot + "/scripts/plot.py"
        guard FileManager.default.fileExists(atPath: script) else {
            let source = explicit == nil ? script : "\(environmentVariable)=\(script)"
            return "Plots: skipped: \(source) does not exist (the plotter is looked for only in the package this binary was built from, or at \(environmentVariable)); \(manual)."
        }
        let packageOfScript = URL(fileURLWithPath: script).deletingLastPathComponent().deletingLastPathComponent().path
        let python = packageOfScript + "/.venv/bin/python"
        guard FileManager.default.isExecutableFile(atPath: python) else {
            return "Plots: run `\(packageOfScript)/scripts/setup-plotting` once (needs python3 with venv), then `.venv/bin/python scripts/plot.py \(csvPath)`."
        }
        // What the interpreter runs besides the script: its configuration and its packages' directories
        // (their top level; the venv is as trusted as the directories holding it).
        let venv = packageOfScript + "/.venv"
        let interpreterFiles = ([venv + "/pyvenv.cfg"] + ((try? FileManager.default.contentsOfDirectory(atPath: venv + "/lib")) ?? [])
            .filter { $0.hasPrefix("python") }.map { "\(venv)/lib/\($0)/site-packages" })
            .filter { FileManager.default.fileExists(atPath: $0) }
        for path in [script, python] + interpreterFiles {
            if let reason = untrustedReason(path) {
                return "Plots: skipped: not running \(path) as uid \(geteuid()): \(reason); \(manual)."
            }
        }
        let plotDirectory = plotDirectory(forCSV: csvPath)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        // -I: ignore PYTHON* variables and the user's site-packages, and leave the script's directory off sys.path.
        process.arguments = ["-I", script, csvPath, "--out", plotDirectory]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do {
            try process.run()
        } catch {
            return "Plots: could not start \(python): \(error.localizedDescription)"
        }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            return "Plots: plot.py failed: \(text.split(separator: "\n").last.map(String.init) ?? "")"
        }
        return "Plots: \(plotDirectory)/index.html"
    }

    /// Why `path` must not be run by this user, or nil when it may: walking from `/` to the file, following
    /// each symlink on the way, every directory and link met must belong to root or to this user, and every
    /// directory (except a root-owned sticky one such as /tmp) and the file must be writable by no one else.
    static func untrustedReason(_ path: String) -> String? {
        let me = geteuid()
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var pending = absolute.split(separator: "/").map(String.init)  // components still to walk
        var current = "/"  // the walk so far: no symlink in it, every directory checked
        var links = 0
        func writers(_ mode: mode_t) -> String { mode & S_IWOTH != 0 ? "everyone" : "its group" }
        var info = stat()
        guard lstat("/", &info) == 0 else { return "/: \(String(cString: strerror(errno)))" }
        if info.st_uid != 0 && info.st_uid != me { return "/ belongs to uid \(info.st_uid), not to root or to you" }
        if info.st_mode & (S_IWGRP | S_IWOTH) != 0 && info.st_mode & S_ISVTX == 0 { return "/ is writable by \(writers(info.st_mode))" }
        while !pending.isEmpty {
            let component = pending.removeFirst()
            if component.isEmpty || component == "." { continue }
            if component == ".." {  // `current` holds no symlink, so its parent is the lexical one
                current = (current as NSString).deletingLastPathComponent
                if current.isEmpty { current = "/" }
                continue
            }
            let next = current == "/" ? "/" + component : current + "/" + component
            guard lstat(next, &info) == 0 else { return "\(next): \(String(cString: strerror(errno)))" }
            if info.st_uid != 0 && info.st_uid != me {
                return "\(next) belongs to uid \(info.st_uid), not to root or to you"
            }
            let type = info.st_mode & S_IFMT
            let writableByOthers = info.st_mode & (S_IWGRP | S_IWOTH) != 0
            switch type {
            case S_IFLNK:
                links += 1
                guard links <= 40 else { return "\(path): too many levels of symbolic links" }
                var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                let count = readlink(next, &buffer, buffer.count - 1)
                guard count >= 0 else { return "\(next): \(String(cString: strerror(errno)))" }
                let target = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if target.hasPrefix("/") { current = "/" }
                pending = target.split(separator: "/").map(String.init) + pending
            case S_IFDIR:
                if writableByOthers && !(info.st_uid == 0 && info.st_mode & S_ISVTX != 0) {
                    return "\(next) is writable by \(writers(info.st_mode))"
                }
                current = next
            case S_IFREG where pending.isEmpty:
                if writableByOthers { return "\(next) is writable by \(writers(info.st_mode))" }
                current = next
            default:
                return "\(next) is not \(pending.isEmpty ? "a regular file" : "a directory")"
            }
        }
        return nil
    }
}
