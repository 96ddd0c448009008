import EdgyDaemon
import Foundation
import Testing

/// `api_threads`: the event loops that serve the API and run edgyd's Swift tasks.
@Suite("API threads setting")
struct APIThreadsSettingTests {
    @Test func defaultsToAQuarterOfTheCoresAndComesFromTheEnvironment() throws {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        #expect(DaemonConfiguration().apiThreads == max(1, cores / 4))
        var settings = DaemonConfiguration()
        try settings.apply(environment: ["EDGY_API_THREADS": "3"])
        #expect(settings.apiThreads == 3)
        try settings.validate()
    }

    @Test func outOfRangeOrNonNumericCountsAreRefused() throws {
        for bad in ["0", "257", "-1"] {
            var settings = DaemonConfiguration()
            try settings.set("api_threads", bad, source: "test")
            #expect(throws: ConfigurationError.self) { try settings.validate() }
        }
        var settings = DaemonConfiguration()
        #expect(throws: ConfigurationError.self) { try settings.set("api_threads", "many", source: "test") }
    }
}
