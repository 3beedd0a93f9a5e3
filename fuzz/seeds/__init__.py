"""Valid inputs of each protocol, the starting points of the mutations, with each protocol's length fields."""
