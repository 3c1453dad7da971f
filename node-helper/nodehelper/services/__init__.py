"""What the endpoints do, one module per concern, over the state objects Helper and PodApi. May import peers,
store, node, runtime, identity, criu, streams and the base modules; never http."""
