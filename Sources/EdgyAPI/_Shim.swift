// TEMPORARY: replaced by the api branch at merge.
import EdgyAuth
import EdgyPolicy
import EdgyStore
import Hummingbird
import Logging
public struct APIConfiguration: Sendable { public var maxQueued: Int; public init(maxQueued: Int = 10000) { self.maxQueued = maxQueued } }
public struct APIDependencies: Sendable {
    public var store: any TaskStore; public var tokens: any TokenStore; public var policies: PolicyCatalog; public var notifier: TaskNotifier; public var logger: Logger; public var readiness: @Sendable () async -> Bool
    public init(store: any TaskStore, tokens: any TokenStore, policies: PolicyCatalog, notifier: TaskNotifier, logger: Logger, readiness: @escaping @Sendable () async -> Bool) { self.store = store; self.tokens = tokens; self.policies = policies; self.notifier = notifier; self.logger = logger; self.readiness = readiness }
}
public func buildRouter(_ deps: APIDependencies, _ config: APIConfiguration) -> Router<BasicRequestContext> {
    let router = Router(context: BasicRequestContext.self)
    router.get("/healthz") { _, _ in "ok" }
    return router
}
