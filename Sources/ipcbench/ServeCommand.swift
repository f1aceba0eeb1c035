import ArgumentParser
import Foundation
import Glibc
import IPCBench

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the consumer side of network cells for `ipcbench run --remote` on another host.",
        discussion: """
            Listens for one client at a time on a TCP control port; for every repetition it starts a \
            consumer worker bound to the same address (on a port the kernel picks, or --data-port) \
            and returns its result to the client, which writes the CSV. Runs until Ctrl-C/SIGTERM, \
            or until the first client leaves with --once. Exits 2 on bad input.
            """)

    @Option(help: ArgumentHelp(
        "Numeric IPv4 address and port to listen on; consumers bind the same address. 0.0.0.0 listens on every interface. Port 0: any free port (printed).",
        valueName: "addr:port"))
    var bind = "127.0.0.1:\(ControlProtocol.defaultPort)"

    @Option(help: ArgumentHelp("CPU to pin consumers to unless the client names one (run --consumer-cpu). Default: the second CPU this process may use (the first if there is only one).", valueName: "cpu"))
    var consumerCPU: Int?

    @Option(help: ArgumentHelp("Fixed port for the consumers' data sockets (for firewalls). Default: a port the kernel picks per repetition.", valueName: "port"))
    var dataPort: UInt16?

    @Option(help: ArgumentHelp("Seconds a client may stay silent between messages before the server hangs up on it.", valueName: "seconds"))
    var idleTimeout = 60.0

    @Flag(help: "Exit after the first client's session.")
    var once = false

    func validate() throws {
        _ = try options()
    }

    func options() throws -> ServerOptions {
        var options = ServerOptions()
        guard let address = HostAndPort(bind) else {
            throw ValidationError("--bind '\(bind)' is not ADDR:PORT; expected a numeric IPv4 address and a port, e.g. 127.0.0.1:\(ControlProtocol.defaultPort) or 0.0.0.0:\(ControlProtocol.defaultPort)")
        }
        var parsed = in_addr()
        guard inet_pton(AF_INET, address.host, &parsed) == 1 else {
            throw ValidationError("--bind '\(bind)': '\(address.host)' is not a numeric IPv4 address (e.g. 127.0.0.1, 0.0.0.0)")
        }
        options.bind = address
        let allowed = Affinity.allowedCPUs()
        if let consumerCPU, !allowed.contains(consumerCPU) {
            throw ValidationError("--consumer-cpu \(consumerCPU) is not a CPU this process can run on; allowed: \(allowed.map(String.init).joined(separator: ","))")
        }
        options.consumerCPU = consumerCPU
        if let dataPort, dataPort == 0 {
            throw ValidationError("--data-port must be a port from 1 to 65535 (leave it out for kernel-chosen ports)")
        }
        options.dataPort = dataPort
        guard idleTimeout > 0, idleTimeout <= 86_400 else {
            throw ValidationError("--idle-timeout must be a number of seconds from 0 to 86400 (got \(idleTimeout))")
        }
        options.idleTimeoutSeconds = idleTimeout
        options.once = once
        return options
    }

    func run() throws {
        let options = try options()
        Interruption.install()
        // Held while consumers may own IPC objects, so `clean` leaves them alone.
        do {
            try RunLock.acquire()
        } catch {
            try? FileHandle.standardError.write(contentsOf: Data("ipcbench serve: cannot create the run lock: \(error)\n".utf8))
            throw ExitCode(1)
        }
        defer { RunLock.release() }
        let server: RemoteServer
        do {
            server = try RemoteServer(options: options) { line in
                try? FileHandle.standardError.write(contentsOf: Data("ipcbench serve: \(DisplayText.printable(line))\n".utf8))
            }
        } catch {
            try? FileHandle.standardError.write(contentsOf: Data("ipcbench serve: cannot listen on \(options.bind): \(error)\n".utf8))
            throw ExitCode(1)
        }
        let cpu = server.info.defaultConsumerCPU.map { "CPU \($0)" } ?? "any CPU"
        let ports = options.dataPort.map { "data port \($0)" } ?? "data ports chosen by the kernel"
        // Scripts and tests read the port from this line (it matters with --bind ADDR:0).
        print("ipcbench serve: listening on \(options.bind.host):\(server.port) (protocol \(ControlProtocol.version); consumers on \(cpu); \(ports))")
        fflush(nil)
        try server.serve()
        if Interruption.requested {
            try? FileHandle.standardError.write(contentsOf: Data("ipcbench serve: stopped\n".utf8))
            throw ExitCode(128 + Interruption.signal)
        }
    }
}
