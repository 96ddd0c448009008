import EdgyAuth
@testable import EdgyWebhooks
import Testing

/// The parts of delivery that need no network: signatures and the retry schedule.
struct WebhookTests {
    /// Fixed vectors, computed independently (Python's hmac module) from the documented recipe.
    @Test func signaturesFollowTheDocumentedRecipe() {
        let secret = TokenSecret.webhookSecret(tokenHash: TokenSecret.hash("edgy_example"))
        #expect(secret == "b24c8535c14560c02479d8dd17c531378c053649821258e5cc83e0b9cd85ad18")
        let signature = WebhookDeliverer.signature(secret: "k", timestamp: "1700000000", body: Array("{}".utf8))
        #expect(signature == "v1=c6ef4734033cee2367414a0939385eca0397754aa7a59716da7463a9298b5146")
    }

    @Test func retriesBackOffExponentiallyWithJitterUpToTheCap() {
        var configuration = WebhookConfiguration()
        configuration.retryBase = .seconds(2)
        configuration.maxDelay = .seconds(60)
        for _ in 0..<200 {
            let first = WebhookDeliverer.delay(after: 1, configuration)
            #expect(first >= .seconds(1) && first < .seconds(3))
            let fourth = WebhookDeliverer.delay(after: 4, configuration)
            #expect(fourth >= .seconds(8) && fourth < .seconds(24))
            let late = WebhookDeliverer.delay(after: 40, configuration)
            #expect(late >= .seconds(30) && late < .seconds(90))
        }
    }
}
