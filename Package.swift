// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Edgy",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "edgy", targets: ["edgy"]),
        .executable(name: "edgy-cli", targets: ["edgy-cli"]),
        .executable(name: "edgyd", targets: ["edgyd"]),
        .library(name: "EdgyJail", targets: ["EdgyJail"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
    ],
    targets: [
        // The fork→exec window: parent half of the spawn and the whole child checklist, in C.
        .target(
            name: "CEdgyJail",
            cSettings: [.define("_GNU_SOURCE"), .unsafeFlags(["-Wall", "-Wextra", "-Werror", "-O2"])]
        ),
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
        // inflate for .tar.gz and .zip uploads (EdgyUpload).
        .systemLibrary(name: "CEdgyZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Decoders of uploaded bytes (multipart, tar, gzip, zip): no server code, so fuzzers build fast.
        .target(name: "EdgyUpload", dependencies: ["CEdgyZlib"], swiftSettings: strict),
        // The JSON create-task body, decoded with the policy vocabulary for limits.
        .target(name: "EdgyTaskJSON", dependencies: ["EdgyPolicy"], swiftSettings: strict),
        // The values every layer shares (task files, outcomes, attempt reports): no dependencies, so
        // the stores and the API do not link the jail.
        // JSON in `JSONEncoder`'s sorted form, written in one pass: reports and task answers.
        .target(name: "EdgyJSON", swiftSettings: strict),
        .target(name: "EdgyModel", dependencies: ["EdgyJSON", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),
        .target(
            name: "EdgySystem",
            dependencies: ["CEdgyJail", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        .target(
            name: "EdgyPolicy",
            dependencies: [
                "TOMLKit",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "EdgySeccomp",
            dependencies: ["CSeccomp", "EdgyModel", "EdgyPolicy", "EdgySystem", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "EdgyCgroup",
            dependencies: ["EdgySystem", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        // libnftables: egress jails' rules, without a fork and exec of `nft` per change.
        // Headers only: libnftables is loaded with dlopen on first use (see its shim.h).
        .systemLibrary(name: "CNFTables", providers: [.apt(["libnftables-dev"])]),
        // Checks of tasks' dependency manifests (requirements.txt, package.json): no server code,
        // so its fuzzer builds fast.
        .target(name: "EdgyManifest", swiftSettings: strict),
        // Grading a case: comparators, a linear-time regex, verdicts.
        .target(name: "EdgyJudge", dependencies: ["EdgyModel"], swiftSettings: strict),
        // The resolver's decoder of jails' DNS queries: no server code, so its fuzzer builds fast.
        .target(name: "EdgyDNS", swiftSettings: strict),
        // Egress jails' host side: veth pairs, nftables rules, the pinning resolver.
        .target(
            name: "EdgyNetwork",
            dependencies: ["CEdgyJail", "CNFTables", "EdgyDNS", "EdgyModel", "EdgyPolicy", "EdgySystem"],
            swiftSettings: strict
        ),
        .target(
            name: "EdgyJail",
            dependencies: [
                "CEdgyJail", "EdgyModel", "EdgySystem", "EdgyPolicy", "EdgySeccomp", "EdgyCgroup", "EdgyNetwork", "EdgySyscallArguments",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // Decoders of what a learning run reads from a workload's memory: no server code, so its fuzzer builds fast.
        .target(name: "EdgySyscallArguments", swiftSettings: strict),
        // The web console: static files compiled into the binary, served by the API at /ui.
        .target(
            name: "EdgyConsole",
            resources: [.embedInCode("Assets/index.html"), .embedInCode("Assets/app.js"), .embedInCode("Assets/app.css")],
            swiftSettings: strict
        ),
        // Webhooks: delivering finished tasks to their callback URLs, signed, retried, from the store.
        .target(
            name: "EdgyWebhooks",
            dependencies: [
                "EdgyStore", "EdgyPolicy", "EdgyModel",
                .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Policy learning: runs a workload under the learning filter and proposes the smallest policy.
        .target(name: "EdgyLearn", dependencies: ["EdgyJail", "EdgyModel", "EdgyPolicy", "EdgySeccomp"], swiftSettings: strict),
        // Dependency layers: the install step's jail, sealing, the on-disk cache (LRU, single-flight).
        .target(
            name: "EdgyLayers",
            dependencies: [
                "EdgyJail", "EdgyModel", "EdgyPolicy", "EdgyStore", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "EdgyStore",
            dependencies: ["EdgyModel", "EdgyPolicy"],
            swiftSettings: strict
        ),
        .target(
            name: "EdgyStoreSQLite",
            dependencies: [
                "EdgyStore", "EdgyModel", "EdgyJSON", "EdgyPolicy", "EdgyAuth", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "EdgyStorePostgres",
            dependencies: [
                "EdgyStore", "EdgyModel", "EdgyAuth",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "EdgyAuth",
            dependencies: ["EdgyModel", "EdgyJSON", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .target(
            name: "EdgyQueue",
            dependencies: [
                "EdgyStore", "EdgyModel", "EdgyJail", "EdgyJudge", "EdgyLayers", "EdgyPolicy", "EdgySystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "EdgyAPI",
            dependencies: [
                "EdgyStore", "EdgyModel", "EdgyJSON", "EdgyAuth", "EdgyPolicy", "EdgyUpload", "EdgyTaskJSON", "EdgyManifest", "EdgyJudge", "EdgyConsole",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "EdgyDaemon",
            dependencies: [
                "EdgyAPI", "EdgyQueue", "EdgyLayers", "EdgyLearn", "EdgyWebhooks", "EdgyModel", "EdgyStore", "EdgyStoreSQLite", "EdgyStorePostgres", "EdgyAuth", "EdgyJail", "EdgyCgroup", "EdgyNetwork", "EdgyPolicy", "EdgySystem", "TOMLKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "edgyd", dependencies: ["EdgyDaemon"], swiftSettings: strict),
        // The messages between `edgy`'s C front end and `edgy helper` (fuzzed on its own).
        .target(name: "EdgyRunProtocol", swiftSettings: strict),
        .target(
            name: "EdgyCLI",
            dependencies: [
                "EdgyRunProtocol", "CEdgyJail", "EdgyModel", "EdgyJail", "EdgyLearn", "EdgyPolicy", "EdgySeccomp", "EdgyCgroup", "EdgyAuth", "EdgyStoreSQLite", "EdgyUpload", "EdgySystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                // `token --server`: an HTTP client without FoundationNetworking, whose libcurl (and
                // its 25 shared libraries) every `edgy run` would otherwise load.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // `edgy` is a small C front end: `edgy run` goes to a warm `edgy helper` when one listens,
        // everything else to this Swift CLI by execv (Sources/edgy-front/main.c).
        .executableTarget(
            name: "edgy", path: "Sources/edgy-front",
            cSettings: [.define("_GNU_SOURCE"), .unsafeFlags(["-Wall", "-Wextra", "-Werror", "-O2"])],
            linkerSettings: [.unsafeFlags(["-static-executable"])]
        ),
        .executableTarget(
            name: "edgy-cli", dependencies: ["EdgyCLI"], path: "Sources/edgy", swiftSettings: strict,
            // With --static-swift-stdlib, swiftc exports every symbol of the binary (-export-dynamic):
            // about 40,000, which the dynamic loader's lookups and the runtime's dladdr at start-up
            // walk on every `edgy run`. Nothing loads code into the CLI that needs them.
            linkerSettings: [.unsafeFlags(["-Xlinker", "--no-export-dynamic"])]
        ),
        .executableTarget(name: "edgy-bench", dependencies: ["EdgyModel", "EdgyJail", "EdgyNetwork", "EdgyPolicy", "EdgyCgroup", "EdgySystem"], path: "Sources/edgy-bench", swiftSettings: strict),
        // The fork server: a small single-threaded C process edgyd clones jails from. Linked
        // statically: every clone copies its mappings and every jail's execve tears them down, and
        // without the Swift runtime, libstdc++ and libm that SwiftPM links into any executable
        // they are 10 instead of 45 (4% off a jail's start, 3-7% more jails/s). Not PIE: its code
        // runs only in the server and in its children before their execve, which replaces it.
        .executableTarget(
            name: "edgy-forkserver", dependencies: ["CEdgyJail"], path: "Sources/edgy-forkserver",
            cSettings: [.define("_GNU_SOURCE"), .unsafeFlags(["-Wall", "-Wextra", "-Werror", "-O2"])],
            linkerSettings: [.unsafeFlags(["-static-executable"])]
        ),
        .executableTarget(
            name: "edgy-bench-claim",
            dependencies: ["EdgyModel", "EdgyStore", "EdgyStorePostgres", .product(name: "Logging", package: "swift-log")],
            path: "Sources/edgy-bench-claim", swiftSettings: strict
        ),
        // A small static C program run inside jails: it tries what the jail must forbid.
        .executableTarget(name: "edgy-probe", path: "Sources/edgy-probe", cSettings: [.define("_GNU_SOURCE")]),
        .target(name: "EdgyTestSupport", dependencies: ["EdgyModel", "EdgyJail", "EdgyPolicy", "EdgyCgroup", "EdgyQueue", "CEdgyZlib"], path: "Tests/EdgyTestSupport", swiftSettings: strict),
        .testTarget(name: "EdgyPolicyTests", dependencies: ["EdgyPolicy"], swiftSettings: strict),
        .testTarget(name: "EdgyManifestTests", dependencies: ["EdgyManifest"], swiftSettings: strict),
        .testTarget(
            name: "EdgyJSONTests", dependencies: ["EdgyFuzzSupport", "EdgyJSON", "EdgyModel", .product(name: "PropertyBased", package: "swift-property-based")],
            swiftSettings: strict),
        .testTarget(name: "EdgyJudgeTests", dependencies: ["EdgyJudge", "EdgyModel"], swiftSettings: strict),
        .testTarget(
            name: "EdgyLayersTests",
            dependencies: [
                "EdgyLayers", "EdgyJail", "EdgyModel", "EdgyNetwork", "EdgyPolicy", "EdgyQueue", "EdgyStore", "EdgyTestSupport",
                "EdgyPostgresTestSupport", "EdgyStorePostgres",
                .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "EdgySeccompTests", dependencies: ["EdgySeccomp", "EdgyPolicy", "EdgyTestSupport"], swiftSettings: strict),
        .testTarget(name: "EdgyCgroupTests", dependencies: ["EdgyCgroup", "EdgyTestSupport", .product(name: "PropertyBased", package: "swift-property-based")], swiftSettings: strict),
        .testTarget(name: "EdgyJailTests", dependencies: ["CEdgyJail", "EdgyModel", "EdgyJail", "EdgySeccomp", "EdgySystem", "EdgyCgroup", "EdgyPolicy", "EdgyTestSupport"], swiftSettings: strict),
        .testTarget(name: "EdgyWebhooksTests", dependencies: ["EdgyWebhooks", "EdgyAuth"], swiftSettings: strict),
        .testTarget(name: "EdgyLearnTests", dependencies: ["EdgyLearn", "EdgyJail", "EdgyModel", "EdgyPolicy", "EdgySeccomp", "EdgySyscallArguments", "EdgyTestSupport"], swiftSettings: strict),
        .testTarget(name: "EdgyNetworkTests", dependencies: ["EdgyNetwork", "EdgyDNS", "EdgyJail", "EdgyLearn", "EdgySeccomp", "EdgyModel", "EdgyPolicy", "EdgyCgroup", "EdgyTestSupport"], swiftSettings: strict),
        .target(
            name: "EdgyPostgresTestSupport",
            dependencies: [
                "EdgyStorePostgres", "EdgyStore", "EdgyTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/EdgyPostgresTestSupport", swiftSettings: strict
        ),
        .testTarget(
            name: "EdgyStoreTests",
            dependencies: [
                "EdgyModel", "EdgyStore", "EdgyPolicy", "EdgyStoreSQLite", "EdgyStorePostgres", "EdgyPostgresTestSupport", "EdgyAuth",
                "EdgyTestSupport", .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "EdgyStorePostgresTests",
            dependencies: [
                "EdgyStorePostgres", "EdgyStore", "EdgyModel", "EdgyAuth", "EdgyPolicy", "EdgyTestSupport", "EdgyPostgresTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "EdgyQueueTests", dependencies: ["EdgyQueue", "EdgyModel", "EdgyJail", "EdgyPolicy", "EdgyStore", "EdgyTestSupport", .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")], swiftSettings: strict),
        .testTarget(
            name: "EdgyAPITests",
            dependencies: ["EdgyAPI", "EdgyJSON", "EdgyModel", "EdgyStore", "EdgyAuth", "EdgyPolicy", "EdgyUpload", "EdgyTestSupport", .product(name: "HummingbirdTesting", package: "hummingbird")],
            swiftSettings: strict
        ),
        .testTarget(name: "EdgyDaemonTests", dependencies: ["EdgyDaemon", "EdgyModel", "EdgyStore", "EdgyCgroup", "EdgyTestSupport", "EdgyPostgresTestSupport"], swiftSettings: strict),
        .testTarget(name: "RepositoryTests", dependencies: ["EdgyTestSupport"], swiftSettings: strict),
        .testTarget(name: "EdgyCLITests", dependencies: ["EdgyCLI", "EdgyModel", "EdgyPolicy", "EdgyRunProtocol", "EdgyTestSupport"], swiftSettings: strict),
        .testTarget(name: "EdgyUploadTests", dependencies: ["EdgyUpload", "EdgyTaskJSON", "EdgyAuth", "EdgyPolicy", "EdgyTestSupport"], swiftSettings: strict),
        // libFuzzer harnesses, one per decoder of client input. Built normally they replay the files
        // given as arguments; `scripts/fuzz` builds them with `-sanitize=fuzzer -DEDGY_FUZZ`.
        .target(name: "EdgyFuzzSupport", path: "Tests/Fuzz/Support", swiftSettings: strict),
    ] + fuzzTargets
)

/// Fuzz target name → the modules it exercises.
var fuzzTargets: [Target] {
    let targets: [(String, [Target.Dependency])] = [
        ("fuzz-tar", ["EdgyUpload"]), ("fuzz-targz", ["EdgyUpload"]), ("fuzz-zip", ["EdgyUpload"]),
        ("fuzz-multipart", ["EdgyUpload"]), ("fuzz-task-json", ["EdgyTaskJSON"]), ("fuzz-duration", ["EdgyAuth"]),
        ("fuzz-policy", ["EdgyPolicy"]),
        ("fuzz-dns", ["EdgyDNS"]),
        ("fuzz-manifest", ["EdgyManifest"]),
        ("fuzz-storage", ["EdgyUpload", "EdgyPolicy", "EdgyModel"]),
        ("fuzz-judge", ["EdgyJudge", "EdgyModel"]),
        ("fuzz-learning", ["EdgySyscallArguments"]),
        ("fuzz-callback", ["EdgyPolicy"]),
        ("fuzz-run-helper", ["EdgyRunProtocol"]),
        ("fuzz-sorted-json", ["EdgyJSON", "EdgyModel"]),
    ]
    return targets.map { name, dependencies in
        .executableTarget(name: name, dependencies: ["EdgyFuzzSupport"] + dependencies, path: "Tests/Fuzz/Targets/\(name)", swiftSettings: strict)
    }
}
