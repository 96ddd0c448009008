import EdgyDaemon

// Before the first `await`: edgyd's Swift tasks run on its event loops from the first one on.
let prepared = EdgydMain.prepare()
await EdgydMain.run(prepared)
