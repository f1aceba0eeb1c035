import Foundation

/// Draws the plots for a results CSV with scripts/plot.py, when the script and its Python environment
/// (set up by scripts/setup-plotting) are found next to this binary's source tree.
enum Plotter {
    /// Returns a line for the user: where the plots are, or how to get them.
    static func draw(csvPath: String) -> String {
        guard let root = sourceRoot() else {
            return "Plots: scripts/plot.py was not found next to this binary; draw them with `python3 scripts/plot.py \(csvPath)` from an ipcbench checkout."
        }
        let python = root.appendingPathComponent(".venv/bin/python").path
        let script = root.appendingPathComponent("scripts/plot.py").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            return "Plots: run `\(root.path)/scripts/setup-plotting` once (needs python3 with venv), then `.venv/bin/python scripts/plot.py \(csvPath)`."
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, csvPath]
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
        let index = URL(fileURLWithPath: csvPath).deletingLastPathComponent().appendingPathComponent("plots/index.html").path
        return "Plots: \(index)"
    }

    /// The checkout this binary was built in (.build/<config>/ipcbench → the directory holding scripts/plot.py).
    static func sourceRoot() -> URL? {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("scripts/plot.py").path) { return directory }
            directory.deleteLastPathComponent()
        }
        return nil
    }
}
