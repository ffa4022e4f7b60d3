"""The use cases: relay (fetch, normalize, deliver), sweep, the queue consumer's settle policy, the task API.

They work through the ports (core.ports) and import only the core.
"""
