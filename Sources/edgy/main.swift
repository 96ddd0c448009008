import EdgyCLI
