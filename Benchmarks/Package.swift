// swift-tools-version: 6.1
import Foundation
import PackageDescription

// A separate package so the main build and `swift test` never pull in package-benchmark.
// Run from this directory: `swift package benchmark` (see README.md).

// A path dependency's identity is its directory's name (`ipcbench` in a clone, something else in a
// worktree), so the product is looked up under whatever the parent directory is called.
let rootPackage = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "IPCBenchBenchmarks",
    dependencies: [
        .package(path: ".."),
        // Only the MallocInterposer trait: the default RuntimeInterposer trait pulls in
        // swift-runtime-interposer on Linux/Swift 6.3, which is not available offline (so ARC metrics
        // are off; the tool's warning about it is expected). The malloc interposer is what counts
        // allocations (.mallocCountTotal) on Swift 6.3 — with `traits: []` the zero-allocation checks
        // would have nothing behind them, which the `malloc counter canary` benchmark is there to catch.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        // For the EAGAIN benchmark that compares swift-system's FileDescriptor.read with SystemCall.
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // In-process micro-benchmarks of the per-message work of the timed loops.
        .executableTarget(
            name: "HotPaths",
            dependencies: [
                .product(name: "IPCBench", package: rootPackage),
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Benchmarks/HotPaths",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        // One real producer/consumer process pair per stream mechanism, through SuiteRunner.runCell.
        .executableTarget(
            name: "PingPong",
            dependencies: [
                .product(name: "IPCBench", package: rootPackage),
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/PingPong",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
