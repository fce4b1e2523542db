"""shopassist: the agent, its tools, the store and the command line."""
