"""Where the heavy batch steps run: `local` (this process, the default, no Ray needed) or `ray`."""
ENGINES = ("local", "ray")
