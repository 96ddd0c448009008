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
        .library(name: "EdgyJail", targets: ["EdgyJail"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // The fork→exec window: parent half of the spawn and the whole child checklist, in C.
        .target(
            name: "CEdgyJail",
            cSettings: [.define("_GNU_SOURCE"), .unsafeFlags(["-Wall", "-Wextra", "-Werror", "-O2"])]
        ),
        .systemLibrary(name: "CSeccomp", pkgConfig: "libseccomp", providers: [.apt(["libseccomp-dev"])]),
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
            dependencies: ["CSeccomp", "EdgyPolicy", "EdgySystem"],
            swiftSettings: strict
        ),
        .target(
            name: "EdgyCgroup",
            dependencies: ["EdgySystem", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        .target(
            name: "EdgyJail",
            dependencies: [
                "CEdgyJail", "EdgySystem", "EdgyPolicy", "EdgySeccomp", "EdgyCgroup",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "EdgyCLI",
            dependencies: [
                "EdgyJail", "EdgyPolicy", "EdgySeccomp",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "edgy", dependencies: ["EdgyCLI"], swiftSettings: strict),
        .executableTarget(name: "edgy-bench", dependencies: ["EdgyJail", "EdgyPolicy", "EdgyCgroup"], path: "Sources/edgy-bench", swiftSettings: strict),
        // A small static C program run inside jails: it tries what the jail must forbid.
        .executableTarget(name: "edgy-probe", path: "Sources/edgy-probe", cSettings: [.define("_GNU_SOURCE")]),
        .target(name: "EdgyTestSupport", dependencies: ["EdgyJail", "EdgyPolicy", "EdgyCgroup"], path: "Tests/EdgyTestSupport", swiftSettings: strict),
        .testTarget(name: "EdgyPolicyTests", dependencies: ["EdgyPolicy", "EdgyTestSupport"], swiftSettings: strict),
        .testTarget(name: "EdgySeccompTests", dependencies: ["EdgySeccomp", "EdgyTestSupport"], swiftSettings: strict),
        .testTarget(name: "EdgyCgroupTests", dependencies: ["EdgyCgroup", "EdgyTestSupport"], swiftSettings: strict),
        .testTarget(name: "EdgyJailTests", dependencies: ["EdgyJail", "EdgyTestSupport"], swiftSettings: strict),
        .testTarget(name: "EdgyCLITests", dependencies: ["EdgyCLI", "EdgyTestSupport"], swiftSettings: strict),
    ]
)
