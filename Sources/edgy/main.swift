import EdgyCLI

await EdgyMain.run()
