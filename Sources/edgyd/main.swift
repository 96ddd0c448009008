import EdgyDaemon

await EdgydMain.run()
