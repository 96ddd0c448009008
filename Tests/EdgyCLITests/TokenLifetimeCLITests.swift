import ArgumentParser
import EdgyCLI
import Testing

/// `--expires-in` beyond any sensible lifetime is a usage error saying what is accepted, not a trap.
@Suite struct TokenLifetimeCLITests {
    @Test(arguments: ["1e10w", "99999999999999999999w", "3651d", "0s", "1.5e3d"])
    func outOfRangeLifetimesAreUsageErrors(lifetime: String) {
        #expect {
            try EdgyCommand.parseAsRoot([
                "token", "create", "--server", "http://x", "--token", "t", "--name", "n", "--role", "reader", "--tenant", "a", "--expires-in", lifetime,
            ])
        } throws: { error in
            let message = EdgyCommand.message(for: error)
            return message.contains("--expires-in must be") && message.contains("at most 3650d") && message.contains(lifetime)
        }
    }
}
