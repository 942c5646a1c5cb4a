"""Where an image's filesystem comes from: the engine, archives, layer folders."""
