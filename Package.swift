// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "ipcbench",
    products: [
        .executable(name: "ipcbench", targets: ["ipcbench"]),
        .library(name: "IPCBench", targets: ["IPCBench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // Errno: typed error numbers for the system-call wrapper (Support/SystemCall.swift).
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // Thin C shim: only what Swift cannot call directly (GNU-only calls, macros, variadics).
        .target(name: "CIPCShim"),
        // NUMA memory placement (mbind, move_pages) through libnuma, loaded with dlopen at run time so
        // the tool still starts without libnuma.so.1. Builds against libnuma-dev's headers
        // (scripts/setup-system installs them).
        .target(name: "CNUMA", linkerSettings: [.linkedLibrary("dl")]),
        .target(
            name: "IPCBench",
            dependencies: [
                "CIPCShim",
                "CNUMA",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .executableTarget(
            name: "ipcbench",
            dependencies: [
                "IPCBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "IPCBenchTests",
            dependencies: ["IPCBench"]
        ),
    ]
)
