import Foundation

/// Where a task's result is POSTed when it finishes, and the key that signs it: the task's
/// webhook, set at creation and stored with the task in the same transaction, so an accepted
/// callback is never lost.
public struct TaskCallback: Sendable, Hashable {
    public var url: String
    /// The HMAC-SHA256 key of the token that created the task (`WebhookSignature.secret`), hex.
    public var secret: String

    public init(url: String, secret: String) {
        self.url = url
        self.secret = secret
    }
}

/// One try of a delivery.
public struct DeliveryAttempt: Sendable, Hashable, Codable {
    public var number: Int
    public var at: Date
    /// The receiver's HTTP status, when it answered.
    public var statusCode: Int?
    /// Why the try failed without a 2xx: a refused address, a timeout, a connection error, a status.
    public var error: String?
    public var durationMs: Int

    public init(number: Int, at: Date, statusCode: Int? = nil, error: String? = nil, durationMs: Int) {
        self.number = number
        self.at = at
        self.statusCode = statusCode
        self.error = error
        self.durationMs = durationMs
    }
}

public enum DeliveryState: String, Sendable, Hashable, Codable {
    /// Waiting for the task to finish, or for its next try.
    case pending
    /// A try got a 2xx.
    case delivered
    /// Every try failed, or the URL was refused at delivery.
    case failed
}

/// A task's webhook delivery as stored.
public struct WebhookDelivery: Sendable, Hashable {
    public var taskID: UUID
    public var tenant: String
    public var url: String
    public var secret: String
    public var state: DeliveryState
    public var attempts: [DeliveryAttempt]
    /// The next try is not made before this time; nil: as soon as the task has finished.
    public var nextAttemptAt: Date?

    public init(taskID: UUID, tenant: String, url: String, secret: String, state: DeliveryState = .pending,
                attempts: [DeliveryAttempt] = [], nextAttemptAt: Date? = nil) {
        self.taskID = taskID
        self.tenant = tenant
        self.url = url
        self.secret = secret
        self.state = state
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
    }
}

/// Webhook deliveries, kept by the task store beside their tasks (and deleted with them). A
/// delivery is due when its task has finished, it is `pending`, its next try is due and no host
/// holds its lease: hosts sharing a store take turns through the lease, and a restarted daemon
/// finds what it had not delivered.
public protocol DeliveryStore: Sendable {
    /// Leases up to `limit` due deliveries until `leaseUntil` and returns them.
    func claimDeliveries(now: Date, leaseUntil: Date, limit: Int) async throws -> [WebhookDelivery]
    /// Appends `attempt` and sets the delivery's state; `nextAttemptAt` for a `pending` one. Ends
    /// the lease.
    func recordDelivery(taskID: UUID, attempt: DeliveryAttempt, state: DeliveryState, nextAttemptAt: Date?) async throws
    /// The task's delivery, if it has a webhook.
    func delivery(taskID: UUID) async throws -> WebhookDelivery?
}

/// JSON of a delivery's tries, as the stores keep them.
public enum DeliveryAttemptsJSON {
    public static func encode(_ attempts: [DeliveryAttempt]) -> String {
        String(decoding: (try? coder.encoder.encode(attempts)) ?? Data("[]".utf8), as: UTF8.self)
    }

    public static func decode(_ text: String) -> [DeliveryAttempt] {
        (try? coder.decoder.decode([DeliveryAttempt].self, from: Data(text.utf8))) ?? []
    }

    private static let coder: (encoder: JSONEncoder, decoder: JSONDecoder) = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return (encoder, decoder)
    }()
}
