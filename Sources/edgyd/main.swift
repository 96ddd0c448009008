print("edgyd: not yet")
